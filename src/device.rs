//! Where tensors are computed: the `--device auto|cpu|cuda[:N]` choice, and libtorch's CUDA
//! backend, loaded at run time.
//!
//! tch links `libtorch_cpu.so` and `libc10.so`. Nothing in our code calls into
//! `libtorch_cuda.so`, so the linker (which links `--as-needed`) leaves it out even when the
//! libtorch we build against has it, and then libtorch never registers its CUDA hooks:
//! `Cuda::is_available()` answers `false` on a GPU workstation and training silently runs on
//! the CPU. Linking it with `--no-as-needed` would make it a hard dependency, so that the CPU
//! bundle (which ships no CUDA libraries) could not start, or would need a second build of the
//! crate. Instead [`cuda_backend`] opens `libtorch_cuda.so` once at start with `dlopen`: its
//! static initialisers register the CUDA hooks with the already loaded `libc10`. Where the
//! library is absent (the CPU bundle) the program goes on on the CPU. The binary's RUNPATH
//! (libtorch's directory in a source build, `$ORIGIN/../lib` in the bundle) is where the
//! loader looks for it.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use tch::Device;
use thiserror::Error;

/// The library whose loading registers libtorch's CUDA backend.
const CUDA_BACKEND: &str = "libtorch_cuda.so";

/// What `--device` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// The first GPU when the CUDA backend loads and sees one, else the CPU.
    #[default]
    Auto,
    /// The CPU, without loading the CUDA backend at all.
    Cpu,
    /// GPU `N`; an error when there is none.
    Cuda(usize),
}

/// Why a `--device` value is refused, or cannot be had on this machine.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DeviceError {
    #[error("`{0}` is not a device: use auto, cpu, cuda or cuda:N")]
    Unparsable(String),
    #[error("cuda:{wanted} was asked for, but {reason}")]
    Unavailable { wanted: usize, reason: String },
}

impl FromStr for DeviceChoice {
    type Err = DeviceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| DeviceError::Unparsable(text.to_owned())),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceChoice {
    /// The device this choice means on this machine. `Auto` and `Cuda` load the CUDA backend
    /// first; `Cpu` never does.
    pub fn resolve(self) -> Result<Device, DeviceError> {
        if self == Self::Cpu {
            return Ok(Device::Cpu);
        }
        let backend = cuda_backend();
        let gpus = if backend.is_loaded() && tch::Cuda::is_available() {
            usize::try_from(tch::Cuda::device_count()).unwrap_or(0)
        } else {
            0
        };
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Auto if gpus > 0 => Ok(Device::Cuda(0)),
            Self::Auto => Ok(Device::Cpu),
            Self::Cuda(n) if n < gpus => Ok(Device::Cuda(n)),
            Self::Cuda(wanted) => Err(DeviceError::Unavailable {
                wanted,
                reason: match backend {
                    CudaBackend::Absent(why) => format!("this build has no CUDA backend ({why})"),
                    CudaBackend::Loaded => format!("the CUDA backend sees {gpus} GPU(s)"),
                },
            }),
        }
    }
}

/// The name the model manifest, the progress events and the logs give a device.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(n) => format!("cuda:{n}"),
        Device::Mps => "mps".into(),
        Device::Vulkan => "vulkan".into(),
    }
}

/// Whether libtorch's CUDA backend is in this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CudaBackend {
    /// `libtorch_cuda.so` is loaded and its hooks registered.
    Loaded,
    /// It could not be loaded: the loader's reason (the CPU bundle has no such library).
    Absent(String),
}

impl CudaBackend {
    pub fn is_loaded(&self) -> bool {
        matches!(self, Self::Loaded)
    }
}

/// Loads libtorch's CUDA backend, once per process; later calls answer what the first found.
pub fn cuda_backend() -> &'static CudaBackend {
    static BACKEND: OnceLock<(CudaBackend, Option<libloading::Library>)> = OnceLock::new();
    let (backend, _library) = BACKEND.get_or_init(|| match open(CUDA_BACKEND) {
        Ok(library) => {
            tracing::debug!("loaded libtorch's CUDA backend ({CUDA_BACKEND})");
            (CudaBackend::Loaded, Some(library))
        }
        Err(e) => (CudaBackend::Absent(e.to_string()), None),
    });
    backend
}

/// `dlopen`s a library by name, with the binary's RUNPATH, for good (it is kept in a static
/// and never unloaded: libtorch's registered hooks point into it).
#[allow(unsafe_code)]
fn open(name: &str) -> Result<libloading::Library, libloading::Error> {
    // SAFETY: loading a library runs its initialisers. `libtorch_cuda.so` is the CUDA half of
    // the very libtorch this binary is linked against (same directory, same build), whose
    // initialisers only register CUDA kernels and hooks with `libc10`; it exports nothing we
    // call through this handle, and the handle is never closed.
    unsafe { libloading::Library::new(name) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_choices_parse_and_print_back() {
        for (text, choice) in [
            ("auto", DeviceChoice::Auto),
            ("CPU", DeviceChoice::Cpu),
            ("cuda", DeviceChoice::Cuda(0)),
            ("cuda:3", DeviceChoice::Cuda(3)),
        ] {
            assert_eq!(text.parse::<DeviceChoice>(), Ok(choice), "{text}");
        }
        assert_eq!(DeviceChoice::Cuda(2).to_string(), "cuda:2");
        for bad in ["", "tpu", "cuda:", "cuda:-1", "cuda:x"] {
            assert!(bad.parse::<DeviceChoice>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_cpu_needs_no_cuda_and_a_missing_gpu_is_a_clear_error() {
        assert_eq!(DeviceChoice::Cpu.resolve(), Ok(Device::Cpu));
        let gpus = if cuda_backend().is_loaded() {
            tch::Cuda::device_count()
        } else {
            0
        };
        let beyond = usize::try_from(gpus).unwrap_or(0);
        let refused = DeviceChoice::Cuda(beyond).resolve().unwrap_err();
        assert!(refused.to_string().contains(&format!("cuda:{beyond}")));
        let auto = DeviceChoice::Auto.resolve().unwrap();
        assert_eq!(auto == Device::Cpu, gpus == 0);
    }
}
