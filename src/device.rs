//! The burn device a run uses, as `MORSD_DEVICE` names it, built explicitly: never
//! `Device::default()`, which prefers wgpu whenever wgpu is compiled in.
//!
//! | `MORSD_DEVICE` | device | cargo feature |
//! |---|---|---|
//! | `flex` (default; `cpu` too) | burn's pure-Rust CPU backend, with morsd's kernels | – |
//! | `wgpu` | cubecl's default adapter (`CUBECL_WGPU_DEFAULT_DEVICE` may choose it) | `wgpu` |
//! | `wgpu:cpu`, `wgpu:discrete[:N]`, `wgpu:integrated[:N]`, `wgpu:virtual[:N]` | that adapter | `wgpu` |
//! | `tch` | libtorch on the CPU | `tch` |
//! | `tch-cuda`, `tch-cuda:N` | libtorch on CUDA device N (0) | `tch` |
//!
//! A name this parser does not know, a backend this binary was built without, or a device the
//! machine does not have is an exit-2 error that says what this binary has and, where it can
//! ask, what the machine offers.

use crate::error::{Error, Result};
use burn::prelude::Device;
use std::str::FromStr;

/// A wgpu adapter: cubecl's default, or the N-th adapter of a type (burn's `DeviceKind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WgpuAdapter {
    /// cubecl's choice: a GPU if there is one (`CUBECL_WGPU_DEFAULT_DEVICE` may override).
    Default,
    /// A CPU adapter (lavapipe, llvmpipe).
    Cpu,
    /// The N-th discrete GPU.
    Discrete(usize),
    /// The N-th integrated GPU.
    Integrated(usize),
    /// The N-th virtual GPU.
    Virtual(usize),
}

/// A device `MORSD_DEVICE` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceName {
    /// burn's pure-Rust CPU backend.
    Flex,
    /// burn's wgpu backend on an adapter.
    Wgpu(WgpuAdapter),
    /// libtorch on the CPU.
    Tch,
    /// libtorch on a CUDA device.
    TchCuda(usize),
}

/// Every name, for error messages.
pub const NAMES: &str = "flex, wgpu, wgpu:cpu, wgpu:discrete[:N], wgpu:integrated[:N], wgpu:virtual[:N], tch, tch-cuda[:N]";

impl FromStr for DeviceName {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let index = |rest: Option<&str>| -> std::result::Result<usize, String> {
            match rest {
                None => Ok(0),
                Some(n) => n
                    .parse()
                    .map_err(|_| format!("`{n}` is not a device index (0, 1, …)")),
            }
        };
        let (head, rest) = match s.split_once(':') {
            Some((h, r)) => (h, Some(r)),
            None => (s, None),
        };
        let named = match (head, rest) {
            ("flex" | "cpu", None) => DeviceName::Flex,
            ("tch", None) => DeviceName::Tch,
            ("tch-cuda", r) => DeviceName::TchCuda(index(r)?),
            ("wgpu", None) => DeviceName::Wgpu(WgpuAdapter::Default),
            ("wgpu", Some(r)) => {
                let (kind, n) = match r.split_once(':') {
                    Some((k, n)) => (k, Some(n)),
                    None => (r, None),
                };
                DeviceName::Wgpu(match (kind, n) {
                    ("cpu", None) => WgpuAdapter::Cpu,
                    ("discrete", n) => WgpuAdapter::Discrete(index(n)?),
                    ("integrated", n) => WgpuAdapter::Integrated(index(n)?),
                    ("virtual", n) => WgpuAdapter::Virtual(index(n)?),
                    _ => {
                        return Err(format!(
                            "`{r}` is no wgpu adapter (cpu, discrete[:N], integrated[:N], virtual[:N])"
                        ));
                    }
                })
            }
            _ => return Err(format!("no such device (the names: {NAMES})")),
        };
        Ok(named)
    }
}

/// The backends compiled into this binary.
pub fn compiled() -> Vec<&'static str> {
    let mut v = vec!["flex"];
    if cfg!(feature = "wgpu") {
        v.push("wgpu");
    }
    if cfg!(feature = "tch") {
        v.push("tch");
    }
    v
}

fn refused(name: &str, message: impl std::fmt::Display) -> Error {
    Error::BadArg {
        arg: format!("MORSD_DEVICE={name}"),
        message: format!("{message}; this binary has: {}", compiled().join(", ")),
    }
}

/// The device `MORSD_DEVICE` names (`flex` when unset).
pub fn device_from_env() -> Result<Device> {
    match std::env::var("MORSD_DEVICE") {
        Ok(name) => device(&name),
        Err(std::env::VarError::NotPresent) => Ok(Device::flex()),
        Err(std::env::VarError::NotUnicode(s)) => Err(refused(&s.to_string_lossy(), "not UTF-8")),
    }
}

/// The device `name` names (see the module's table).
pub fn device(name: &str) -> Result<Device> {
    match name.parse::<DeviceName>().map_err(|e| refused(name, e))? {
        DeviceName::Flex => Ok(Device::flex()),
        DeviceName::Wgpu(adapter) => wgpu_device(name, adapter),
        DeviceName::Tch => tch_device(name, None),
        DeviceName::TchCuda(n) => tch_device(name, Some(n)),
    }
}

#[cfg(feature = "wgpu")]
fn wgpu_device(name: &str, adapter: WgpuAdapter) -> Result<Device> {
    use burn::tensor::DeviceKind;
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    // burn initialises an adapter selector once per process; a second `init` of the same one
    // is an error, so each adapter's device is kept.
    static DEVICES: OnceLock<Mutex<HashMap<WgpuAdapter, Device>>> = OnceLock::new();
    let mut devices = DEVICES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(d) = devices.get(&adapter) {
        return Ok(d.clone());
    }
    let kind = match adapter {
        WgpuAdapter::Default => DeviceKind::DefaultDevice,
        WgpuAdapter::Cpu => DeviceKind::Cpu,
        WgpuAdapter::Discrete(n) => DeviceKind::DiscreteGpu(n),
        WgpuAdapter::Integrated(n) => DeviceKind::IntegratedGpu(n),
        WgpuAdapter::Virtual(n) => DeviceKind::VirtualGpu(n),
    };
    let d = Device::wgpu_options()
        .device_kind(kind)
        .init()
        .map_err(|e| {
            refused(
                name,
                format!(
                    "no such wgpu adapter ({e}); this machine offers: {}",
                    wgpu_adapters()
                ),
            )
        })?;
    devices.insert(adapter, d.clone());
    Ok(d)
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device(name: &str, _: WgpuAdapter) -> Result<Device> {
    Err(refused(
        name,
        "built without the `wgpu` feature (cargo build --features wgpu)",
    ))
}

/// The adapters wgpu finds on this machine, every graphics API, as `name (type, backend)`.
#[cfg(feature = "wgpu")]
pub fn wgpu_adapters() -> String {
    use burn::tensor::wgpu::wgpu;
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::all(),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    if adapters.is_empty() {
        return "no adapter (for a CPU one, install Mesa's lavapipe: scripts/setup-vulkan.sh)"
            .into();
    }
    adapters
        .iter()
        .map(|a| {
            let i = a.get_info();
            format!("{} ({:?}, {:?})", i.name, i.device_type, i.backend)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(feature = "tch")]
#[allow(deprecated)]
fn tch_device(name: &str, cuda: Option<usize>) -> Result<Device> {
    match cuda {
        None => Ok(Device::libtorch()),
        Some(n) => {
            // burn's libtorch device panics on a CUDA index the machine lacks (and on a
            // libtorch without CUDA): count first. burn lists CUDA devices only.
            let count = Device::enumerate(burn::tensor::DeviceType::LibTorch).len();
            if n >= count {
                return Err(refused(
                    name,
                    format!(
                        "this machine offers {count} CUDA device(s) to libtorch{}",
                        if count == 0 {
                            " (no CUDA GPU, or a CPU-only libtorch)"
                        } else {
                            ""
                        }
                    ),
                ));
            }
            Ok(Device::libtorch_cuda(n))
        }
    }
}

#[cfg(not(feature = "tch"))]
fn tch_device(name: &str, _: Option<usize>) -> Result<Device> {
    Err(refused(
        name,
        "built without the `tch` feature (cargo build --features tch, with PyTorch 2.9.0)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_device_name_parses_and_others_are_refused_with_the_names() {
        use DeviceName::*;
        use WgpuAdapter::*;
        for (s, want) in [
            ("flex", Flex),
            ("cpu", Flex),
            ("wgpu", Wgpu(Default)),
            ("wgpu:cpu", Wgpu(Cpu)),
            ("wgpu:discrete", Wgpu(Discrete(0))),
            ("wgpu:discrete:1", Wgpu(Discrete(1))),
            ("wgpu:integrated:2", Wgpu(Integrated(2))),
            ("wgpu:virtual", Wgpu(Virtual(0))),
            ("tch", Tch),
            ("tch-cuda", TchCuda(0)),
            ("tch-cuda:3", TchCuda(3)),
        ] {
            assert_eq!(s.parse::<DeviceName>(), Ok(want), "{s}");
        }
        for (s, says) in [
            ("cuda", "no such device (the names: flex, wgpu"),
            ("tch-cuda:x", "`x` is not a device index"),
            ("wgpu:gpu", "`gpu` is no wgpu adapter"),
            ("wgpu:cpu:1", "`cpu:1` is no wgpu adapter"),
            ("flex:0", "no such device"),
            ("", "no such device"),
        ] {
            let e = s.parse::<DeviceName>().unwrap_err();
            assert!(e.contains(says), "{s}: {e}");
        }
    }

    #[test]
    fn an_unknown_or_absent_device_is_an_exit_2_error_naming_what_this_binary_has() {
        let e = device("cuda").unwrap_err();
        assert!(e.is_user_error(), "{e}");
        let text = e.to_string();
        assert!(
            text.starts_with("MORSD_DEVICE=cuda:") && text.contains("this binary has: flex"),
            "{text}"
        );
        assert!(device("flex").is_ok());
        if !cfg!(feature = "wgpu") {
            let text = device("wgpu:cpu").unwrap_err().to_string();
            assert!(text.contains("without the `wgpu` feature"), "{text}");
        }
        if !cfg!(feature = "tch") {
            let text = device("tch-cuda:1").unwrap_err().to_string();
            assert!(text.contains("without the `tch` feature"), "{text}");
        }
    }
}
