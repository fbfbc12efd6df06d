#!/usr/bin/env bash
# Installs Mesa's software Vulkan (lavapipe: a conformant Vulkan 1.3 device on the CPU) and the
# Vulkan loader from Debian's packages, once, for burn's wgpu backend to run on a machine
# without a GPU (`MORSD_DEVICE=wgpu` tests). Prints the variables the tests read:
#   VK_DRIVER_FILES            lavapipe's ICD file, so the loader offers lavapipe alone
#   CUBECL_WGPU_DEFAULT_DEVICE Cpu: cubecl's default adapter is that CPU device
# and checks that `vulkaninfo` sees it. Needs apt-get (as root, or through sudo).
set -euo pipefail
icd=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json
if [ ! -s "$icd" ] || ! command -v vulkaninfo >/dev/null 2>&1; then
    sudo_=""
    [ "$(id -u)" -eq 0 ] || sudo_=sudo
    $sudo_ apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -q --no-install-recommends \
        mesa-vulkan-drivers libvulkan1 vulkan-tools >&2
fi
if ! VK_DRIVER_FILES="$icd" vulkaninfo --summary 2>/dev/null | grep -q "PHYSICAL_DEVICE_TYPE_CPU"; then
    echo "setup-vulkan: vulkaninfo finds no CPU Vulkan device with $icd" >&2
    exit 1
fi
echo "VK_DRIVER_FILES=$icd"
echo "CUBECL_WGPU_DEFAULT_DEVICE=Cpu"
