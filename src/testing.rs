//! Test support: run one test body on every enabled device.

/// Makes one `#[test]` per compiled backend from each body:
/// `fn name(device) { ... }` becomes `name::flex`, `name::ndarray` and `name::wgpu`.
///
/// The wgpu test fails (with the reason) when the build has the `wgpu` feature but the
/// machine has no adapter: a silently skipped GPU test would hide a broken setup.
#[doc(hidden)]
#[macro_export]
macro_rules! device_tests {
    ($(fn $name:ident($device:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                #[allow(unused)]
                fn run($device: ::burn::tensor::Device) $body

                #[cfg(feature = "flex")]
                #[test]
                fn flex() {
                    run($crate::device::Backend::Flex.device().unwrap());
                }

                #[cfg(feature = "ndarray")]
                #[test]
                fn ndarray() {
                    run($crate::device::Backend::Ndarray.device().unwrap());
                }

                #[cfg(feature = "wgpu")]
                #[test]
                fn wgpu() {
                    run($crate::device::Backend::Wgpu.device().unwrap());
                }
            }
        )*
    };
}
