// auth.js: the admin sign-in page and the first-account (setup link) page.
// Both post JSON to the admin API; on success the server sets the session cookie and we go
// to the portal (or to the page the user was sent away from: ?next=/admin/...).

const errorBox = document.getElementById("auth-error");

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
}

/** Only our own portal pages are followed after sign-in (never another site). */
function nextPage() {
  const next = new URLSearchParams(location.search).get("next") || "/admin/";
  return next.startsWith("/admin") && !next.startsWith("//") ? next : "/admin/";
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  if (response.ok) return null;
  try {
    const problem = await response.json();
    return problem.error?.message || `the server answered ${response.status}`;
  } catch {
    return `the server answered ${response.status}`;
  }
}

const login = document.getElementById("login-form");
if (login) {
  fetch("/api/v1/admin/setup").then((r) => r.json()).then((s) => {
    document.getElementById("no-admin").hidden = !s.needed;
  }).catch(() => {});
  login.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    const problem = await post("/api/v1/admin/login", {
      username: login.username.value,
      password: login.password.value,
    });
    if (problem) showError(problem);
    else location.assign(nextPage());
  });
}

const setup = document.getElementById("setup-form");
if (setup) {
  const token = new URLSearchParams(location.search).get("token") || "";
  if (!token) showError("This page needs the setup link the server printed (it ends in ?token=…).");
  setup.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    if (setup.password.value !== setup.password2.value) {
      showError("The two passwords differ.");
      return;
    }
    const problem = await post("/api/v1/admin/setup", {
      token,
      username: setup.username.value,
      password: setup.password.value,
    });
    if (problem) showError(problem);
    else location.assign("/admin/");
  });
}
