//! Real-browser tests: a headless Chromium, driven through chromedriver over WebDriver, uses
//! the real binary as players, admins and implementors do. One file per area:
//! - `driver`: the WebDriver client (launch, scripts, pointer and touch actions);
//! - `game`: drawings arrive with their points, timestamps and device; one submitted while
//!   the server is down is stored exactly once after a restart; the live guess offline;
//! - `implement`: the implementor page's model card and guesses;
//! - `admin`: signing in by the setup link, review by keyboard, the sign-in page;
//! - `portal`: the live feed, a training job from the form, review by touch, exports, phones;
//! - `tablet`: both orientations fit a finger; a finger draws, a long press selects.
//!
//! The WebDriver client is the few W3C endpoints these tests use, spoken over `reqwest`:
//! fantoccini without its TLS features needs `hyper-util`'s `HttpConnector`, which this package
//! does not depend on.
//!
//! Without Chromium or chromedriver the tests print why and pass, except under `CI`, where
//! they fail: CI installs the Debian packages `chromium` and `chromium-driver`. `CHROMIUM` and
//! `CHROMEDRIVER` point at other binaries.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

/// Where Debian's `chromium` and `chromium-driver` packages put the browser and its driver.
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
const DEFAULT_CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The WebDriver spec's key for an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long any single wait in these tests may take before it fails.
const WAIT: Duration = Duration::from_secs(10);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(50);
/// Intermediate pointer moves in a drawn stroke.
const MOVES: usize = 40;
/// How far (CSS px) a stored point may lie from the path the pointer took: action coordinates
/// are whole viewport pixels, the board's origin may be fractional.
const TOLERANCE: f64 = 1.5;

/// A tablet held upright (CSS px); turned, it is the other way round.
const TABLET: (u32, u32) = (768, 1024);
/// How long a finger rests for a long press (the portal selects after 500 ms).
const LONG_PRESS: Duration = Duration::from_millis(700);

/// One browser at a time: the machines running these tests have few cores, and three
/// Chromiums at once make timing-dependent steps (a fling, a retry) needlessly slow.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// --- the real server: the one launcher shared with the process tests -------------------------

#[path = "../common/server.rs"]
mod server;
#[path = "../common/synthetic.rs"]
mod synthetic;

use doodlebox::ml::synth::Shape;
use server::Server;

mod admin;
mod driver;
mod game;
mod implement;
mod portal;
mod tablet;

use admin::*;
use driver::*;
use game::*;
use implement::*;
use portal::*;
