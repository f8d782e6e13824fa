"""The emulator's bundled image catalogue, generated from a fixed seed so every run sees the same images.

Generating it (rather than shipping a data file) keeps the package small and lets the catalogue carry
exactly the situations a lookup has to get right: the same name in several zones, superseded versions,
images still being made, arm64 twins of x86 images, GPU images, names with stray spaces, old ID forms and
hundreds of custom "golden" images in several projects. Records use the API's PascalCase spelling; custom
images also carry the emulator-only key ``_ProjectId`` (keys starting with ``_`` never leave the emulator).
The module is data: the catalogue's families, names and fixed facts, read top to bottom.

Fixed facts tests may rely on (region ``cn-bj2``):

- ``uimage-f1chxn`` is the only "CentOS 7.2 64位" image (Base, Linux, cn-bj2-02, NetEnhanced + HotPlug).
- "Ubuntu 22.04 64位" Base images: ``uimage-ub2202`` (cn-bj2-02), ``uimage-ub2203`` (cn-bj2-03),
  ``uimage-ub2204`` (cn-bj2-04) and ``uimage-ub2205`` (cn-bj2-05, the newest Available x86_64 Base one of
  every image whose name starts with "Ubuntu 22.04"); ``uimage-ub22a5`` is an older arm64 twin in cn-bj2-05
  and ``uimage-ub22a6`` a newer one (2026-02-10), ``uimage-ub22o1`` an Unavailable predecessor and
  ``uimage-ub22mk`` a newer one still Making.
- Marketplace (Business) images newer than all of those whose names start the same way:
  ``uimage-ub22wp`` "Ubuntu 22.04 64位 + WordPress 6.5" (cn-bj2-02, vendor "WPStack", func_type uhost,
  2026-03-05, the newest Available image whose name starts with "Ubuntu 22.04") and ``uimage-ub22cu``
  "Ubuntu 22.04 64位 CUDA 12.4 + PyTorch 2.3" (cn-bj2-05, vendor "DeepStack AI", func_type gpu, GPU types
  A100, H100, 4090, scenes AIModels and PreInstalledDrivers, 2026-02-20).
- End of life (MaintainEol) comes from each system: CentOS 7.x (``uimage-f1chxn`` among them) ended on
  2024/06/30, Ubuntu 22.04 is maintained until 2027/04/30.
- Custom "golden-web" in project ``org-platform``, zone cn-bj2-02: ``uimage-gw0314`` ("golden-web-2026.03.14",
  the newest Available), ``uimage-gw0307`` ("golden-web-2026.03.07") and ``uimage-gw0321``
  ("golden-web-2026.03.21", Making).
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

__all__ = [
    "DEFAULT_PROJECT",
    "DEMO_REGION",
    "KNOWN_REGIONS",
    "PROJECTS",
    "ZONES",
    "build_catalog",
    "region_of",
    "synthetic_catalog",
]

DEMO_REGION = "cn-bj2"
DEFAULT_PROJECT = "org-platform"
PROJECTS = ("org-platform", "org-data", "org-ml")
SEED = 20260314

# Regions that hold images, with their zones.
ZONES: dict[str, tuple[str, ...]] = {
    "cn-bj2": ("cn-bj2-02", "cn-bj2-03", "cn-bj2-04", "cn-bj2-05"),
    "cn-sh2": ("cn-sh2-01", "cn-sh2-02", "cn-sh2-03"),
    "cn-gd": ("cn-gd-02",),
    "hk": ("hk-01", "hk-02"),
    "sg": ("sg-01", "sg-02"),
    "us-ca": ("us-ca-01",),
}
# Every region the emulator accepts; those without images answer an empty list, as a real empty region does.
KNOWN_REGIONS: tuple[str, ...] = (
    "cn-bj2", "cn-sh2", "cn-gd", "cn-wlcb", "hk", "tw-tp", "sg", "jpn-tky", "kr-seoul", "th-bkk",
    "idn-jakarta", "vn-sng", "ind-mumbai", "us-ca", "us-ws", "bra-saopaulo", "rus-mosc", "ge-fra",
    "uk-london", "uae-dubai", "afr-nigeria",
)

_ID_ALPHABET = string.ascii_lowercase + string.digits
_CST = timezone(timedelta(hours=8))


def _ts(year: int, month: int, day: int, hour: int = 10, minute: int = 0, second: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, second, tzinfo=_CST).timestamp())


def region_of(record: Any) -> str:
    """The region of a record: its ``_Region`` if set, else its zone without the ``-NN`` suffix."""
    explicit = record.get("_Region")
    if isinstance(explicit, str) and explicit:
        return explicit
    zone = record.get("Zone")
    if isinstance(zone, str) and "-" in zone:
        return zone.rsplit("-", 1)[0]
    return ""


@dataclass(frozen=True)
class _Os:
    name: str
    os_type: str
    eol: str
    released: int
    size: int = 20
    features: tuple[str, ...] = ()
    minimal_cpu: str = ""


_LINUX = ("CloudInit", "NetEnhanced", "NetEnhanced_Ultra", "HotPlug", "IPv6", "RssdAttachable")
_WINDOWS = ("NetEnhanced", "NetEnhanced_Ultra", "HotPlug", "RssdAttachable")

_BASE_OS: tuple[_Os, ...] = (
    _Os("CentOS 7.9 64位", "Linux", "2024/06/30", _ts(2021, 1, 12), features=_LINUX),
    _Os("CentOS 7.6 64位", "Linux", "2024/06/30", _ts(2019, 3, 8), features=_LINUX[:4]),
    _Os("高内核CentOS 7.6 64位", "Linux", "2024/06/30", _ts(2020, 5, 20), features=_LINUX[:4]),
    _Os("CentOS 7.4 64位", "Linux", "2024/06/30", _ts(2018, 2, 2), features=("NetEnhanced", "HotPlug"),
        minimal_cpu="Broadwell"),
    _Os("CentOS 8.3 64位", "Linux", "2021/12/31", _ts(2021, 2, 1), features=_LINUX[:5]),
    _Os("Ubuntu 24.04 64位", "Linux", "2029/04/30", _ts(2024, 6, 3), features=_LINUX),
    _Os("Ubuntu 22.04 64位", "Linux", "2027/04/30", _ts(2023, 5, 10), features=_LINUX),
    _Os("Ubuntu 20.04 64位", "Linux", "2025/04/30", _ts(2021, 3, 15), features=_LINUX),
    _Os("Ubuntu 18.04 64位", "Linux", "2023/05/31", _ts(2019, 4, 2), features=_LINUX[:4]),
    _Os("Debian 12.5 64位", "Linux", "2028/06/30", _ts(2024, 3, 1), features=_LINUX),
    _Os("Debian 11.7 64位", "Linux", "2026/06/30", _ts(2023, 6, 1), features=_LINUX),
    _Os("Rocky 9.4 64位", "Linux", "2032/05/31", _ts(2024, 6, 20), features=_LINUX),
    _Os("Rocky 8.10 64位", "Linux", "2029/05/31", _ts(2024, 7, 1), features=_LINUX),
    _Os("RedHat 8.3 64位", "Linux", "2029/05/31", _ts(2021, 4, 6), size=40, features=_LINUX[:5]),
    _Os("AlmaLinux 9.3 64位", "Linux", "2032/05/31", _ts(2024, 1, 18), features=_LINUX),
    _Os("openEuler 22.03 64位", "Linux", "2026/05/31", _ts(2023, 9, 1), features=_LINUX[:5]),
    _Os("Anolis 8.8 64位", "Linux", "2031/06/30", _ts(2023, 11, 6), features=_LINUX[:5]),
    _Os("Windows 2022 64位", "Windows", "2031/10/14", _ts(2023, 2, 14), size=40, features=_WINDOWS),
    _Os("Windows 2019 64位", "Windows", "2029/01/09", _ts(2020, 8, 11), size=40, features=_WINDOWS),
    _Os("Windows 2016 64位", "Windows", "2027/01/12", _ts(2019, 1, 8), size=40, features=_WINDOWS[2:]),
)
_OS_BY_NAME = {system.name: system for system in _BASE_OS}

# Zones with arm64 hosts, and the operating systems offered there as arm64 twins.
_ARM_ZONES = ("cn-bj2-05", "cn-sh2-03", "hk-02")
_ARM_OS = ("Ubuntu 22.04 64位", "CentOS 7.9 64位", "Debian 12.5 64位", "openEuler 22.03 64位")
# Zones with GPU hosts, and the GPU images offered there.
_GPU_ZONES = ("cn-bj2-05", "cn-sh2-02", "hk-02", "us-ca-01")
_GPU_IMAGES: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("Ubuntu 22.04 64位 GPU CUDA12.2", "Ubuntu 22.04 64位", ("GPU", "Vgpu_NVIDIA"), ("4090", "A100", "T4", "V100S")),
    ("Ubuntu 20.04 64位 GPU CUDA11.8", "Ubuntu 20.04 64位", ("GPU",), ("T4", "V100S", "P40")),
    ("CentOS 7.9 64位 GPU CUDA11.4", "CentOS 7.9 64位", ("GPU",), ("T4", "P40")),
    ("Ubuntu 20.04 64位 vGPU AMD", "Ubuntu 20.04 64位", ("GPU", "Vgpu_AMD"), ("AMD-V520",)),
    ("Windows 2019 64位 GPU NVIDIA驱动", "Windows 2019 64位", ("GPU",), ("T4", "4090")),
)
# (zone, OS name, name as published): a few real names carry a stray space.
_SPACED_NAMES = {
    ("cn-bj2-03", "Rocky 9.4 64位"): "Rocky 9.4 64位 ",
    ("cn-sh2-01", "Debian 11.7 64位"): "Debian 11.7 64位 ",
    ("hk-01", "CentOS 7.6 64位"): " CentOS 7.6 64位",
    ("sg-01", "WordPress 6.4 (Ubuntu 22.04)"): " WordPress 6.4 (Ubuntu 22.04)",
}


@dataclass(frozen=True)
class _Business:
    name: str
    base: str
    vendor: str
    software: str
    primary: str
    link: str
    func_type: str = "uhost"
    scenes: tuple[str, ...] = ("Featured",)
    gpu_types: tuple[str, ...] = ()
    size: int = 40


_BUSINESS: tuple[_Business, ...] = (
    _Business("宝塔Linux面板 8.0 (CentOS 7.9)", "CentOS 7.9 64位", "宝塔",
              "宝塔面板 8.0, Nginx 1.24, MySQL 5.7, PHP 7.4", "宝塔面板", "https://www.bt.cn"),
    _Business("WordPress 6.4 (Ubuntu 22.04)", "Ubuntu 22.04 64位", "Bitnami",
              "WordPress 6.4, Apache 2.4, MariaDB 10.11", "WordPress", "https://bitnami.com/stack/wordpress"),
    _Business("Docker CE 24.0 (Ubuntu 22.04)", "Ubuntu 22.04 64位", "UCloud",
              "Docker CE 24.0, docker compose 2.21", "Docker", "https://docs.docker.com/engine/"),
    _Business("LNMP 1.9 (Rocky 9.4)", "Rocky 9.4 64位", "LNMP.org",
              "Nginx 1.22, MySQL 8.0, PHP 8.1", "LNMP", "https://lnmp.org"),
    _Business("SQL Server 2019 标准版 (Windows 2019)", "Windows 2019 64位", "Microsoft",
              "SQL Server 2019 Standard", "SQL Server", "https://www.microsoft.com/sql-server", size=80),
    _Business("Stable Diffusion WebUI 1.7 (Ubuntu 22.04)", "Ubuntu 22.04 64位", "UCloud",
              "Stable Diffusion WebUI 1.7, CUDA 12.1, PyTorch 2.1", "Stable Diffusion",
              "https://github.com/AUTOMATIC1111/stable-diffusion-webui", func_type="gpu",
              scenes=("Featured", "AIPainting"), gpu_types=("4090", "A100", "T4"), size=100),
    _Business("ComfyUI (Ubuntu 22.04)", "Ubuntu 22.04 64位", "UCloud", "ComfyUI, CUDA 12.1, PyTorch 2.1",
              "ComfyUI", "https://github.com/comfyanonymous/ComfyUI", func_type="gpu",
              scenes=("AIPainting",), gpu_types=("4090", "A100"), size=100),
    _Business("ChatGLM3-6B (Ubuntu 22.04)", "Ubuntu 22.04 64位", "UCloud", "ChatGLM3-6B, CUDA 12.1, vLLM 0.4",
              "ChatGLM3", "https://github.com/THUDM/ChatGLM3", func_type="gpu",
              scenes=("AIModels",), gpu_types=("4090", "A100", "V100S"), size=120),
    _Business("Llama 3 8B Instruct (Ubuntu 22.04)", "Ubuntu 22.04 64位", "UCloud",
              "Llama 3 8B Instruct, CUDA 12.1, Ollama 0.1", "Llama 3", "https://llama.meta.com",
              func_type="gpu", scenes=("AIModels",), gpu_types=("4090", "A100"), size=120),
    _Business("OpenFOAM 11 (CentOS 7.9)", "CentOS 7.9 64位", "OpenFOAM", "OpenFOAM 11, OpenMPI 4.1",
              "OpenFOAM", "https://www.openfoam.com", scenes=("HPC",)),
    _Business("轻量 Docker (Ubuntu 22.04)", "Ubuntu 22.04 64位", "UCloud", "Docker CE 24.0", "Docker",
              "https://docs.docker.com/engine/", func_type="app", scenes=(), size=20),
    _Business("轻量 WordPress (Ubuntu 22.04)", "Ubuntu 22.04 64位", "UCloud", "WordPress 6.4, Nginx, MySQL",
              "WordPress", "https://wordpress.org", func_type="app", scenes=(), size=20),
)
_BUSINESS_REGIONS = ("cn-bj2", "cn-sh2", "hk", "sg", "us-ca")


@dataclass(frozen=True)
class _Golden:
    """A family of custom images baked by a pipeline: one version every ``every_days`` up to ``newest``."""

    family: str
    region: str
    zone: str
    project: str
    base: str
    versions: int
    every_days: int
    newest: int
    tag: str = "Default"
    func_type: str = "uhost"
    extra_features: tuple[str, ...] = ()
    gpu_types: tuple[str, ...] = ()
    snapshots: bool = False
    size: int = 40


_NEWEST = _ts(2026, 3, 14, 3, 20)
_GOLDEN: tuple[_Golden, ...] = (
    _Golden("web", "cn-bj2", "cn-bj2-02", "org-platform", "Ubuntu 22.04 64位", 40, 7, _NEWEST),
    _Golden("db", "cn-bj2", "cn-bj2-03", "org-platform", "Rocky 9.4 64位", 26, 14, _ts(2026, 3, 9, 2),
            snapshots=True, size=100),
    _Golden("cache", "cn-bj2", "cn-bj2-02", "org-platform", "Debian 12.5 64位", 16, 21, _ts(2026, 3, 2, 4)),
    _Golden("ci-runner", "cn-bj2", "cn-bj2-04", "org-platform", "Ubuntu 24.04 64位", 24, 7, _ts(2026, 3, 12, 1)),
    _Golden("win-iis", "cn-bj2", "cn-bj2-03", "org-platform", "Windows 2022 64位", 10, 30, _ts(2026, 2, 27, 5),
            size=80),
    _Golden("arm-web", "cn-bj2", "cn-bj2-05", "org-platform", "Ubuntu 22.04 64位", 10, 14, _ts(2026, 3, 13, 3),
            extra_features=("Aarch64_Type",)),
    _Golden("etl", "cn-bj2", "cn-bj2-03", "org-data", "CentOS 7.9 64位", 20, 10, _ts(2026, 3, 10, 6),
            tag="data", snapshots=True, size=60),
    _Golden("spark", "cn-bj2", "cn-bj2-03", "org-data", "Rocky 8.10 64位", 12, 30, _ts(2026, 2, 20, 6),
            tag="data", size=60),
    _Golden("gpu-train", "cn-bj2", "cn-bj2-05", "org-ml", "Ubuntu 22.04 64位", 14, 14, _ts(2026, 3, 11, 8),
            tag="ml", func_type="gpu", extra_features=("GPU",), gpu_types=("A100", "4090"), size=100),
    _Golden("web", "cn-sh2", "cn-sh2-01", "org-platform", "Ubuntu 22.04 64位", 24, 7, _ts(2026, 3, 14, 4)),
    _Golden("db", "cn-sh2", "cn-sh2-02", "org-platform", "Rocky 9.4 64位", 16, 14, _ts(2026, 3, 9, 3),
            snapshots=True, size=100),
    _Golden("etl", "cn-sh2", "cn-sh2-02", "org-data", "CentOS 7.9 64位", 12, 10, _ts(2026, 3, 10, 7),
            tag="data", size=60),
    _Golden("web", "hk", "hk-02", "org-platform", "Ubuntu 22.04 64位", 16, 7, _ts(2026, 3, 14, 5)),
    _Golden("web", "us-ca", "us-ca-01", "org-platform", "Ubuntu 22.04 64位", 12, 7, _ts(2026, 3, 14, 6)),
)
# Fixed IDs of the cn-bj2 golden-web versions that tests pin to (version index 0 = newest).
_GOLDEN_FIXED_IDS = {("web", "cn-bj2", 0): "uimage-gw0314", ("web", "cn-bj2", 1): "uimage-gw0307"}


class _Ids:
    """Unique image IDs from the seeded generator, never colliding with the fixed ones."""

    def __init__(self, rng: random.Random, reserved: Iterable[str] = ()) -> None:
        self.rng = rng
        self.used: set[str] = set()
        self.reserved = set(reserved)  # taken later by name; never generated

    def take(self, image_id: str) -> str:
        if image_id in self.used:
            raise ValueError(f"duplicate image ID {image_id}")
        self.used.add(image_id)
        return image_id

    def new(self, length: int = 6, prefix: str = "uimage-") -> str:
        while True:
            candidate = prefix + "".join(self.rng.choice(_ID_ALPHABET) for _ in range(length))
            if candidate not in self.used and candidate not in self.reserved:
                return self.take(candidate)

    def snapshot(self) -> str:
        return self.new(prefix="bsnap-")


def _record(
    *,
    image_id: str,
    name: str,
    zone: str,
    system: _Os,
    image_type: str,
    created: int,
    features: Sequence[str],
    state: str = "Available",
    func_type: str = "uhost",
    size: int | None = None,
    description: str = "",
    minimal_cpu: str | None = None,
    vendor: str = "",
    links: str = "",
    integrated: str = "",
    primary: str = "",
    gpu_types: Sequence[str] = (),
    scenes: Sequence[str] = (),
    snapshots: Sequence[str] = (),
    tag: str = "Default",
) -> dict[str, Any]:
    return {
        "ImageId": image_id,
        "ImageName": name,
        "Zone": zone,
        "OsType": system.os_type,
        "OsName": system.name,
        "ImageType": image_type,
        "Features": list(features),
        "FuncType": func_type,
        "State": state,
        "CreateTime": created,
        "ImageSize": system.size if size is None else size,
        "ImageDescription": description,
        "MaintainEol": system.eol,
        "Tag": tag,
        "Vendor": vendor,
        "MinimalCPU": system.minimal_cpu if minimal_cpu is None else minimal_cpu,
        "SupportedGPUTypes": list(gpu_types),
        "SceneCategories": list(scenes),
        "DataSnapshotIds": list(snapshots),
        "IntegratedSoftware": integrated,
        "PrimarySoftware": primary,
        "Links": links,
    }


def _fixed_images() -> list[dict[str, Any]]:
    """The hand-written images tests refer to by ID (see the module docstring)."""
    ubuntu = _OS_BY_NAME["Ubuntu 22.04 64位"]
    centos72 = _Os("CentOS 7.2 64位", "Linux", "2024/06/30", _ts(2019, 4, 16, 21, 5, 3), size=20)
    described = "Ubuntu 22.04 LTS 64位 标准镜像"
    return [
        _record(image_id="uimage-f1chxn", name="CentOS 7.2 64位", zone="cn-bj2-02", system=centos72, image_type="Base",
                created=centos72.released, features=("NetEnhanced", "HotPlug"), description="CentOS 7.2 64位 标准镜像"),
        _record(image_id="uimage-ub22o1", name="Ubuntu 22.04 64位", zone="cn-bj2-02", system=ubuntu, image_type="Base",
                created=_ts(2023, 5, 10, 11), features=ubuntu.features, state="Unavailable",
                description=described + " (已被新版本取代)"),
        _record(image_id="uimage-ub2202", name="Ubuntu 22.04 64位", zone="cn-bj2-02", system=ubuntu, image_type="Base",
                created=_ts(2025, 3, 1, 14, 12, 7), features=ubuntu.features, description=described),
        _record(image_id="uimage-ub2203", name="Ubuntu 22.04 64位", zone="cn-bj2-03", system=ubuntu, image_type="Base",
                created=_ts(2025, 6, 12, 9, 30, 41), features=ubuntu.features, description=described),
        _record(image_id="uimage-ub2204", name="Ubuntu 22.04 64位", zone="cn-bj2-04", system=ubuntu, image_type="Base",
                created=_ts(2025, 9, 5, 16, 2, 55), features=ubuntu.features, description=described),
        _record(image_id="uimage-ub2205", name="Ubuntu 22.04 64位", zone="cn-bj2-05", system=ubuntu, image_type="Base",
                created=_ts(2026, 1, 20, 10, 45, 12), features=ubuntu.features, description=described),
        _record(image_id="uimage-ub22a5", name="Ubuntu 22.04 64位", zone="cn-bj2-05", system=ubuntu, image_type="Base",
                created=_ts(2025, 11, 3, 15, 20, 0), features=("CloudInit", "NetEnhanced", "IPv6", "Aarch64_Type"),
                minimal_cpu="Ampere", description=described + " (arm64)"),
        _record(image_id="uimage-ub22mk", name="Ubuntu 22.04 64位", zone="cn-bj2-04", system=ubuntu, image_type="Base",
                created=_ts(2026, 3, 10, 8, 0, 0), features=ubuntu.features, state="Making",
                description=described + " (制作中)"),
        _record(image_id="uimage-ub22a6", name="Ubuntu 22.04 64位", zone="cn-bj2-05", system=ubuntu, image_type="Base",
                created=_ts(2026, 2, 10, 9, 12, 30), features=("CloudInit", "NetEnhanced", "IPv6", "Aarch64_Type"),
                minimal_cpu="Ampere", description=described + " (arm64)"),
        # A vendor's images whose names start like the base image's: only a query that names the marketplace
        # may get them.
        _record(image_id="uimage-ub22wp", name="Ubuntu 22.04 64位 + WordPress 6.5", zone="cn-bj2-02", system=ubuntu,
                image_type="Business", created=_ts(2026, 3, 5, 11, 0, 0), features=("CloudInit", "NetEnhanced"),
                size=40, vendor="WPStack", links="https://wpstack.example.com", integrated="WordPress 6.5, Nginx 1.24",
                primary="WordPress", scenes=("Featured",), description="WordPress 6.5 一键部署镜像, 由 WPStack 提供"),
        _record(image_id="uimage-ub22cu", name="Ubuntu 22.04 64位 CUDA 12.4 + PyTorch 2.3", zone="cn-bj2-05",
                system=ubuntu, image_type="Business", created=_ts(2026, 2, 20, 15, 30, 0),
                features=("CloudInit", "NetEnhanced", "GPU"), func_type="gpu", size=100, vendor="DeepStack AI",
                links="https://deepstack.example.com", integrated="CUDA 12.4, cuDNN 9, PyTorch 2.3",
                primary="PyTorch", gpu_types=("A100", "H100", "4090"), scenes=("AIModels", "PreInstalledDrivers"),
                description="CUDA 12.4 + PyTorch 2.3 镜像, 由 DeepStack AI 提供"),
    ]


def _jitter(rng: random.Random, start: int, days: int) -> int:
    return start + rng.randrange(days * 86400)


def _base_images(rng: random.Random, ids: _Ids) -> list[dict[str, Any]]:
    images: list[dict[str, Any]] = []
    for region, zones in ZONES.items():
        for zone in zones:
            for system in _BASE_OS:
                if region == DEMO_REGION and system.name == "Ubuntu 22.04 64位":
                    continue  # the fixed ones
                if system.name == "CentOS 8.3 64位" and region not in ("cn-bj2", "cn-sh2"):
                    continue
                name = _SPACED_NAMES.get((zone, system.name), system.name)
                created = _jitter(rng, system.released, 120)
                state = "Available"
                if system.eol < "2024/01/01" and rng.random() < 0.5:
                    state = "Unavailable"
                images.append(_record(
                    image_id=ids.new(), name=name, zone=zone, system=system, image_type="Base", created=created,
                    features=system.features, state=state, description=f"{system.name} 标准镜像",
                ))
                if region in ("cn-bj2", "cn-sh2") and system.name in ("CentOS 7.9 64位", "Ubuntu 20.04 64位"):
                    # A superseded build of the same system, kept but no longer bootable.
                    images.append(_record(
                        image_id=ids.new(), name=name, zone=zone, system=system, image_type="Base",
                        created=created - 200 * 86400, features=system.features, state="Unavailable",
                        description=f"{system.name} 标准镜像 (已被新版本取代)",
                    ))
            if zone in _ARM_ZONES:
                for os_name in _ARM_OS:
                    if zone == "cn-bj2-05" and os_name == "Ubuntu 22.04 64位":
                        continue  # uimage-ub22a5
                    system = _OS_BY_NAME[os_name]
                    images.append(_record(
                        image_id=ids.new(), name=system.name, zone=zone, system=system, image_type="Base",
                        created=_jitter(rng, system.released + 90 * 86400, 90),
                        features=("CloudInit", "NetEnhanced", "IPv6", "Aarch64_Type"), minimal_cpu="Ampere",
                        description=f"{system.name} 标准镜像 (arm64)",
                    ))
            if zone in _GPU_ZONES:
                for name, os_name, gpu_features, gpu_types in _GPU_IMAGES:
                    system = _OS_BY_NAME[os_name]
                    features = [f for f in system.features if f in ("CloudInit", "NetEnhanced", "NetEnhanced_Ultra")]
                    images.append(_record(
                        image_id=ids.new(), name=name, zone=zone, system=system, image_type="Base",
                        created=_jitter(rng, system.released + 60 * 86400, 200), features=[*features, *gpu_features],
                        func_type="gpu", size=system.size + 20, gpu_types=gpu_types, scenes=("PreInstalledDrivers",),
                        description=f"{name}: 预装 {'AMD' if 'AMD' in name else 'NVIDIA'} 驱动",
                    ))
    # Images from the early days, with the older, longer ID forms.
    legacy = (
        ("cn-bj2-02", _Os("CentOS 6.5 64位", "Linux", "2020/11/30", _ts(2016, 3, 2)), "Available",
         ids.new(length=8)),
        ("cn-bj2-04", _Os("Ubuntu 14.04 64位", "Linux", "2019/04/30", _ts(2015, 7, 21)), "Unavailable",
         ids.take(_uuid(rng))),
        ("cn-sh2-01", _Os("Windows 2008 R2 64位", "Windows", "2020/01/14", _ts(2015, 1, 9), size=40), "Unavailable",
         ids.take(f"{rng.getrandbits(128):032x}")),
        ("cn-sh2-01", _Os("CentOS 6.10 64位", "Linux", "2020/11/30", _ts(2018, 8, 1)), "Available",
         ids.new(length=8)),
    )
    for zone, system, state, image_id in legacy:
        images.append(_record(
            image_id=image_id, name=system.name, zone=zone, system=system, image_type="Base", created=system.released,
            features=("NetEnhanced",), state=state, description=f"{system.name} 标准镜像 (已停止维护)",
        ))
    return images


def _uuid(rng: random.Random) -> str:
    raw = f"{rng.getrandbits(128):032x}"
    return f"{raw[:8]}-{raw[8:12]}-4{raw[13:16]}-a{raw[17:20]}-{raw[20:]}"


def _business_images(rng: random.Random, ids: _Ids) -> list[dict[str, Any]]:
    images: list[dict[str, Any]] = []
    for region in _BUSINESS_REGIONS:
        zones = ZONES[region]
        for offer in _BUSINESS:
            offered = [zone for zone in zones if zone in _GPU_ZONES] if offer.func_type == "gpu" else list(zones[:2])
            for zone in offered:
                system = _OS_BY_NAME[offer.base]
                features = [f for f in system.features if f in ("CloudInit", "NetEnhanced", "HotPlug")]
                if offer.func_type == "gpu":
                    features.append("GPU")
                images.append(_record(
                    image_id=ids.new(), name=_SPACED_NAMES.get((zone, offer.name), offer.name), zone=zone,
                    system=system, image_type="Business",
                    created=_jitter(rng, _ts(2024, 1, 1), 700), features=features, func_type=offer.func_type,
                    size=offer.size, vendor=offer.vendor, links=offer.link, integrated=offer.software,
                    primary=offer.primary, gpu_types=offer.gpu_types, scenes=offer.scenes,
                    state="Unavailable" if rng.random() < 0.05 else "Available",
                    description=f"{offer.primary} 一键部署镜像, 由 {offer.vendor} 提供",
                ))
    return images


def _golden_record(
    golden: _Golden, system: _Os, features: Sequence[str], created: int, state: str, image_id: str, build: int,
    snapshots: Sequence[str],
) -> dict[str, Any]:
    version = datetime.fromtimestamp(created, tz=_CST).strftime("%Y.%m.%d")
    record = _record(
        image_id=image_id, name=f"golden-{golden.family}-{version}", zone=golden.zone, system=system,
        image_type="Custom", created=created, features=features, state=state, func_type=golden.func_type,
        size=golden.size, gpu_types=golden.gpu_types, tag=golden.tag, snapshots=snapshots,
        description=f"golden-{golden.family} {version}, baked from {system.name} by pipeline build {build}",
    )
    record["_ProjectId"] = golden.project
    return record


def _golden_images(rng: random.Random, ids: _Ids) -> list[dict[str, Any]]:
    images: list[dict[str, Any]] = []
    for golden in _GOLDEN:
        system = _OS_BY_NAME[golden.base]
        features = [f for f in system.features if f != "NetEnhanced_Ultra" or golden.func_type != "gpu"]
        features += golden.extra_features
        if "Aarch64_Type" in golden.extra_features:
            features = ["CloudInit", "NetEnhanced", "IPv6", "Aarch64_Type"]
        build = 1000 + rng.randrange(500)
        for index in reversed(range(golden.versions)):  # oldest first, as a pipeline publishes them
            created = golden.newest - index * golden.every_days * 86400 + rng.randrange(-3600, 3600)
            if index == 0:
                created = golden.newest
            fixed = _GOLDEN_FIXED_IDS.get((golden.family, golden.region, index))
            state = "Unavailable" if index >= 2 and rng.random() < 0.08 else "Available"
            build += 1 + rng.randrange(12)
            snapshots = [ids.snapshot()] if golden.snapshots and rng.random() < 0.7 else []
            image_id = ids.take(fixed) if fixed else ids.new()
            images.append(_golden_record(golden, system, features, created, state, image_id, build, snapshots))
        if golden.region in ("cn-bj2", "cn-sh2") and golden.family == "web":
            # The next version, still being baked.
            image_id = ids.take("uimage-gw0321") if golden.region == DEMO_REGION else ids.new()
            images.append(_golden_record(golden, system, features, golden.newest + 7 * 86400, "Making", image_id,
                                         build + 5, []))
    # A golden-web copy on its way from cn-bj2 to hk.
    copying = dict(next(i for i in images if i["ImageId"] == "uimage-gw0314"))
    copying.update(ImageId=ids.new(), Zone="hk-01", State="Copying", CreateTime=_NEWEST + 3 * 3600)
    images.append(copying)
    return images


@lru_cache(maxsize=1)
def _catalog() -> tuple[dict[str, Any], ...]:
    rng = random.Random(SEED)
    fixed = _fixed_images()
    ids = _Ids(rng, reserved=["uimage-gw0314", "uimage-gw0307", "uimage-gw0321"])
    for record in fixed:
        ids.take(record["ImageId"])
    images = [*fixed, *_base_images(rng, ids), *_business_images(rng, ids), *_golden_images(rng, ids)]
    return tuple(images)


def _copy(record: dict[str, Any]) -> dict[str, Any]:
    return {key: list(value) if isinstance(value, list) else value for key, value in record.items()}


def build_catalog() -> list[dict[str, Any]]:
    """The bundled catalogue: a fresh copy of the same records on every call (callers may mutate it)."""
    return [_copy(record) for record in _catalog()]


def synthetic_catalog(region: str, count: int, *, zone: str | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """``count`` plain Available Linux Base images in ``region`` (for benchmarks), with distinct create times.

    Zones default to the region's zones (or ``<region>-01``); names cycle through the Linux systems.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    rng = random.Random(seed)
    ids = _Ids(rng)
    zones = (zone,) if zone else ZONES.get(region, (f"{region}-01",))
    systems = [system for system in _BASE_OS if system.os_type == "Linux"]
    start = _ts(2020, 1, 1)
    images = []
    for index in range(count):
        system = systems[index % len(systems)]
        images.append(_record(
            image_id=ids.new(), name=system.name, zone=zones[index % len(zones)], system=system, image_type="Base",
            created=start + index * 3600, features=system.features, description=f"{system.name} 标准镜像",
        ))
    return images
