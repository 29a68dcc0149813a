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
//! | `cuda`    | NVIDIA GPUs (CubeCL's CUDA)      | the same, on NVIDIA hardware                |
//!
//! A name may carry a device index for the GPU backends: `cuda:1`, `wgpu:1` (the second
//! discrete GPU); several devices train one model through
//! [`Trainer::with_devices`](crate::train::Trainer::with_devices).

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
    /// An NVIDIA GPU through Burn's CUDA backend (`cuda` feature).
    Cuda,
}

impl BackendKind {
    /// Every backend, compiled in or not.
    pub const ALL: [BackendKind; 4] = [
        BackendKind::Flex,
        BackendKind::Ndarray,
        BackendKind::Wgpu,
        BackendKind::Cuda,
    ];

    /// The name used on command lines and in cargo features.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Flex => "flex",
            BackendKind::Ndarray => "ndarray",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cuda => "cuda",
        }
    }

    /// Whether this backend's cargo feature was enabled at build time.
    pub fn is_compiled(self) -> bool {
        match self {
            BackendKind::Flex => cfg!(feature = "flex"),
            BackendKind::Ndarray => cfg!(feature = "ndarray"),
            BackendKind::Wgpu => cfg!(feature = "wgpu"),
            BackendKind::Cuda => cfg!(feature = "cuda"),
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
        self.device_at(None)
    }

    /// Device `index` of this backend (`None`: its default device). Only the GPU backends
    /// have more than one.
    ///
    /// # Errors
    /// As [`Self::device`], and [`Error::Backend`] for an index on a CPU backend.
    pub fn device_at(self, index: Option<usize>) -> Result<Device> {
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
        if let (Some(index), BackendKind::Flex | BackendKind::Ndarray) = (index, self) {
            return Err(Error::Backend {
                name: format!("{}:{index}", self.name()),
                reason: "a CPU backend has one device: give its name alone".into(),
            });
        }
        match self {
            #[cfg(feature = "flex")]
            BackendKind::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)] // deprecated upstream, kept working on purpose
            BackendKind::Ndarray => Ok(Device::ndarray()),
            #[cfg(feature = "wgpu")]
            BackendKind::Wgpu => wgpu_device(index),
            #[cfg(feature = "cuda")]
            BackendKind::Cuda => Ok(match index {
                Some(index) => Device::cuda(index),
                None => Device::cuda(burn::tensor::DeviceIndex::Default),
            }),
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
        // Burn exposes no public accessor for a CubeCL device's runtime, so the device's
        // debug name tells: CUDA's names its runtime, and every wgpu adapter (discrete,
        // integrated, software) is one of the other CubeCL devices.
        #[cfg(feature = "cuda")]
        if format!("{device:?}").contains("Cuda") {
            return Some(BackendKind::Cuda);
        }
        #[cfg(feature = "wgpu")]
        if format!("{device:?}").contains("Cube") {
            return Some(BackendKind::Wgpu);
        }
        let _ = device;
        None
    }
}

#[cfg(feature = "wgpu")]
fn wgpu_device(index: Option<usize>) -> Result<Device> {
    use burn::tensor::{DeviceKind, DeviceType};
    let adapters = Device::enumerate(DeviceType::Wgpu).len();
    if adapters == 0 {
        return Err(Error::Backend {
            name: "wgpu".into(),
            reason: "no wgpu adapter found (no GPU driver; on Debian, `apt-get install \
                     mesa-vulkan-drivers` gives a software Vulkan device)"
                .into(),
        });
    }
    Ok(Device::wgpu(match index {
        Some(index) => DeviceKind::DiscreteGpu(index),
        None => DeviceKind::DefaultDevice,
    }))
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
                    "unknown backend (known: flex, ndarray, wgpu, cuda; compiled: {})",
                    compiled_names()
                ),
            })
    }
}

/// The device called `name`: a backend (`flex`, `ndarray`, `wgpu`, `cuda`) for its
/// default device, or a GPU backend and an index (`cuda:1`, `wgpu:0`).
///
/// ```
/// let device = siamese::device::by_name("flex")?;
/// assert!(siamese::device::by_name("tpu").is_err());
/// assert!(siamese::device::by_name("flex:1").is_err()); // one CPU device
/// # Ok::<(), siamese::Error>(())
/// ```
///
/// # Errors
/// [`Error::Backend`] for an unknown name or index, a backend not compiled in, or a wgpu
/// build on a machine without an adapter.
pub fn by_name(name: &str) -> Result<Device> {
    match name.split_once(':') {
        None => name.parse::<BackendKind>()?.device(),
        Some((backend, index)) => {
            let index = index.trim().parse::<usize>().map_err(|_| Error::Backend {
                name: name.into(),
                reason: format!("{index:?} is not a device index (`cuda:1`, `wgpu:0`)"),
            })?;
            backend.parse::<BackendKind>()?.device_at(Some(index))
        }
    }
}

/// The devices of a comma-separated list of names ([`by_name`]), for
/// [`Trainer::with_devices`](crate::train::Trainer::with_devices): `cuda:0,cuda:1`.
///
/// ```
/// let devices = siamese::device::by_names("flex")?;
/// assert_eq!(devices.len(), 1);
/// assert!(siamese::device::by_names("flex,").is_err());
/// # Ok::<(), siamese::Error>(())
/// ```
///
/// # Errors
/// As [`by_name`], for the first name that fails.
pub fn by_names(names: &str) -> Result<Vec<Device>> {
    names.split(',').map(|name| by_name(name.trim())).collect()
}

/// The default device of the best compiled backend for training and evaluation:
/// flex, then wgpu, then ndarray.
///
/// # Errors
/// [`Error::Backend`] when no backend feature was enabled.
pub fn default_device() -> Result<Device> {
    [
        BackendKind::Flex,
        BackendKind::Wgpu,
        BackendKind::Cuda,
        BackendKind::Ndarray,
    ]
    .into_iter()
    .filter(|b| b.is_compiled())
    .find_map(|b| b.device().ok())
    .ok_or_else(|| Error::Backend {
        name: "default".into(),
        reason: "no backend compiled in: enable one of the features flex, ndarray, wgpu, cuda"
            .into(),
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
        let err = by_name("tpu").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("\"tpu\""), "{message}");
        assert!(
            message.contains("known: flex, ndarray, wgpu, cuda"),
            "{message}"
        );
        let message = by_name("wgpu:x").unwrap_err().to_string();
        assert!(message.contains("not a device index"), "{message}");
        let message = by_name("flex:1").unwrap_err().to_string();
        assert!(
            message.contains("flex:1") && message.contains("one device"),
            "{message}"
        );
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
