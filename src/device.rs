//! Choosing a backend by name.
//!
//! Burn 0.22 carries the backend in the [`Device`]: the model code is the same for every
//! backend, and cargo features decide which backends are compiled in.
//!
//! | feature   | backend                          | use it for                                  |
//! |-----------|----------------------------------|---------------------------------------------|
//! | `flex`    | Burn's pure-Rust CPU backend     | training and evaluation on CPU (default)    |
//! | `ndarray` | burn-ndarray (deprecated upstream)| CPU inference and training (0.55–0.85× flex) |
//! | `wgpu`    | Vulkan / Metal / DX12 GPUs       | training the paper-size `koch` network      |

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;

use crate::{Error, Result};

/// A tensor backend this crate can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendKind {
    /// Burn's pure-Rust CPU backend (`flex` feature).
    Flex,
    /// burn-ndarray (`ndarray` feature): CPU inference and training, slower than flex.
    Ndarray,
    /// A GPU through wgpu (`wgpu` feature).
    Wgpu,
}

impl BackendKind {
    /// Every backend, compiled in or not.
    pub const ALL: [BackendKind; 3] = [BackendKind::Flex, BackendKind::Ndarray, BackendKind::Wgpu];

    /// The name used on command lines and in cargo features.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Flex => "flex",
            BackendKind::Ndarray => "ndarray",
            BackendKind::Wgpu => "wgpu",
        }
    }

    /// Whether this backend's cargo feature was enabled at build time.
    pub fn is_compiled(self) -> bool {
        match self {
            BackendKind::Flex => cfg!(feature = "flex"),
            BackendKind::Ndarray => cfg!(feature = "ndarray"),
            BackendKind::Wgpu => cfg!(feature = "wgpu"),
        }
    }

    /// The backends compiled into this build, in [`BackendKind::ALL`] order.
    pub fn compiled() -> Vec<BackendKind> {
        Self::ALL.into_iter().filter(|b| b.is_compiled()).collect()
    }

    /// The default device of this backend.
    ///
    /// # Errors
    /// [`Error::Backend`] when the backend was not compiled in, or (wgpu) when no adapter
    /// was found on this machine.
    pub fn device(self) -> Result<Device> {
        if !self.is_compiled() {
            return Err(Error::Backend {
                name: self.name().into(),
                reason: format!(
                    "the `{}` cargo feature is not enabled in this build (compiled: {})",
                    self.name(),
                    compiled_names()
                ),
            });
        }
        match self {
            #[cfg(feature = "flex")]
            BackendKind::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)] // deprecated upstream, kept working on purpose
            BackendKind::Ndarray => Ok(Device::ndarray()),
            #[cfg(feature = "wgpu")]
            BackendKind::Wgpu => wgpu_device(),
            #[allow(unreachable_patterns)]
            _ => unreachable!("checked by is_compiled"),
        }
    }

    /// The backend a device belongs to, if it is one of this crate's.
    ///
    /// Autodiff does not change the answer: `device.autodiff()` is on the same backend.
    pub fn of(device: &Device) -> Option<BackendKind> {
        #[cfg(feature = "flex")]
        if *device == Device::flex() {
            return Some(BackendKind::Flex);
        }
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)] // deprecated upstream, kept working on purpose
        if *device == Device::ndarray() {
            return Some(BackendKind::Ndarray);
        }
        // Every wgpu adapter (discrete, integrated, software) is a CubeCL device, and in
        // this crate's feature set CubeCL only comes from wgpu; Burn exposes no public
        // accessor for the runtime, so the device's debug name tells.
        #[cfg(feature = "wgpu")]
        if format!("{device:?}").contains("Cube") {
            return Some(BackendKind::Wgpu);
        }
        let _ = device;
        None
    }
}

#[cfg(feature = "wgpu")]
fn wgpu_device() -> Result<Device> {
    use burn::tensor::{DeviceKind, DeviceType};
    if Device::enumerate(DeviceType::Wgpu)
        .into_iter()
        .next()
        .is_none()
    {
        return Err(Error::Backend {
            name: "wgpu".into(),
            reason: "no wgpu adapter found (no GPU driver; on Debian, `apt-get install \
                     mesa-vulkan-drivers` gives a software Vulkan device)"
                .into(),
        });
    }
    Ok(Device::wgpu(DeviceKind::DefaultDevice))
}

fn compiled_names() -> String {
    let names: Vec<&str> = BackendKind::compiled()
        .into_iter()
        .map(BackendKind::name)
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|b| b.name().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| Error::Backend {
                name: name.into(),
                reason: format!(
                    "unknown backend (known: flex, ndarray, wgpu; compiled: {})",
                    compiled_names()
                ),
            })
    }
}

/// The default device of the backend called `name` (`flex`, `ndarray` or `wgpu`).
///
/// ```
/// let device = siamese::device::by_name("flex")?;
/// assert!(siamese::device::by_name("tpu").is_err());
/// # Ok::<(), siamese::Error>(())
/// ```
///
/// # Errors
/// [`Error::Backend`] for an unknown name, a backend not compiled in, or a wgpu build
/// on a machine without an adapter.
pub fn by_name(name: &str) -> Result<Device> {
    name.parse::<BackendKind>()?.device()
}

/// The default device of the best compiled backend for training and evaluation:
/// flex, then wgpu, then ndarray.
///
/// # Errors
/// [`Error::Backend`] when no backend feature was enabled.
pub fn default_device() -> Result<Device> {
    [BackendKind::Flex, BackendKind::Wgpu, BackendKind::Ndarray]
        .into_iter()
        .filter(|b| b.is_compiled())
        .find_map(|b| b.device().ok())
        .ok_or_else(|| Error::Backend {
            name: "default".into(),
            reason: "no backend compiled in: enable one of the features flex, ndarray, wgpu".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for backend in BackendKind::ALL {
            assert_eq!(backend.name().parse::<BackendKind>().unwrap(), backend);
            assert_eq!(backend.to_string(), backend.name());
        }
        assert_eq!(" FLEX ".parse::<BackendKind>().unwrap(), BackendKind::Flex);
    }

    #[test]
    fn unknown_name_is_a_clear_error() {
        let err = by_name("cuda").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("\"cuda\""), "{message}");
        assert!(message.contains("known: flex, ndarray, wgpu"), "{message}");
    }

    #[test]
    fn missing_feature_is_a_clear_error() {
        for backend in BackendKind::ALL.into_iter().filter(|b| !b.is_compiled()) {
            let message = backend.device().unwrap_err().to_string();
            assert!(
                message.contains("cargo feature is not enabled"),
                "{message}"
            );
        }
    }

    #[test]
    fn compiled_backends_give_their_devices() {
        for backend in BackendKind::compiled() {
            if let Ok(device) = backend.device() {
                assert_eq!(BackendKind::of(&device), Some(backend));
                assert_eq!(BackendKind::of(&device.clone().autodiff()), Some(backend));
            }
        }
    }
}
