"""The ways users install the plugin from a clone, under the engine, as docs/plugin.md documents them.

The plugin runs as Pulumi runs a Python plugin from source: ``PulumiPlugin.yaml`` names the Python runtime, the
language host builds the plugin's own virtualenv (``pip install`` of the package) and starts it with
``python -m pulumi.run.plugin``. No test here puts the plugin on ``PATH``: the test venv's bin is left off it, so
a plugin found there (and the "using ... from $PATH" warning) would fail them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from pulumi_ucloud_images import lookup_images
from pulumi_ucloud_images._emulator.service import Emulator
from tests.engine.engine_project import ROOT, VENV_BIN, Project, new_project
from tests.engine.test_plugin import PROGRAM, UBUNTU

pytestmark = [pytest.mark.engine, pytest.mark.slow]

# What the CLI's copy of a plugin directory (pkg/v3 pluginstorage: WalkDir, then os.Open and io.Copy of each
# entry that is not a directory) does with a symlink to a directory, such as a Linux virtualenv's lib64 -> lib.
COPY_ERROR = "copy_file_range: is a directory"
# The YAML host the engine tier builds (pulumi-yaml v1.25.0, the newest the Go module proxy serves) predates Link.
NO_LINK = "linking package: method Link not implemented"
NO_NODEJS_HOST = "no language plugin 'pulumi-language-nodejs' found in the workspace or on your $PATH"


def source_files() -> list[str]:
    """The repository's files as a clone has them: tracked, plus new ones not ignored (no .venv, no caches)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode()
    return sorted(name for name in listed.split("\0") if name and (ROOT / name).is_file())


@pytest.fixture(scope="session")
def plugin_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository as a fresh clone has it, made once; the routes install its plugin from it."""
    directory = tmp_path_factory.mktemp("clone") / "pulumi-ucloud-images"
    for name in source_files():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, directory / name)
    return directory


@pytest.fixture(scope="session")
def plugin_tarball(plugin_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The source as ``git archive --format=tar.gz 'HEAD^{tree}'`` makes it: no pax global header (the CLI refuses
    one: "unexpected plugin file type pax_global_header")."""
    tarball = tmp_path_factory.mktemp("tarball") / "ucloud-images.tgz"
    with tarfile.open(tarball, "w:gz", format=tarfile.GNU_FORMAT) as archive:
        for name in source_files():
            archive.add(plugin_source / name, arcname=name)
    return tarball


def off_path(project: Project) -> Project:
    """The project's PATH without the test venv's bin, where the console script pulumi-resource-ucloud-images is."""
    parts = project.env["PATH"].split(os.pathsep)
    project.env["PATH"] = os.pathsep.join(part for part in parts if Path(part) != VENV_BIN)
    return project


def timed(project: Project, *args: str, check: bool = True) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = project.run(*args, check=check)
    return done, time.monotonic() - started


def yaml_project(tmp_path: Path, engine: Path, env: dict[str, str], **extra: object) -> Project:
    return off_path(new_project(tmp_path, engine, env, manifest={"name": "routes", "runtime": "yaml", **PROGRAM,
                                                                 **extra}))


def assert_program_outputs(project: Project) -> None:
    outputs = project.outputs()
    centos = lookup_images(os_type="linux", name_regex=r"^CentOS 7\.2 64")
    ubuntu = lookup_images(os_type="linux", image_type="base", name_regex=r"^Ubuntu 22\.04", architecture="x86_64",
                           most_recent=True)
    assert outputs["centosImageId"] == centos.image_id
    assert outputs["pinnedImageId"] == ubuntu.image_id


def test_plugin_install_from_a_source_tarball_serves_a_yaml_program(
    tmp_path: Path, engine_dir: Path, emulator: Emulator, emulator_env: dict[str, str], plugin_tarball: Path
) -> None:
    """The documented route: the plugin cache holds the plugin and its own virtualenv; the program names no path."""
    project = yaml_project(tmp_path, engine_dir, emulator_env)
    _, installing = timed(project, "plugin", "install", "resource", "ucloud-images", "0.1.0", "--file",
                          str(plugin_tarball))
    installed = project.home / "plugins" / "resource-ucloud-images-v0.1.0"
    assert (installed / ".venv" / "bin" / "python").exists()
    preview, previewing = timed(project, "preview")
    up, upping = timed(project, "up", "--yes")
    for done in (preview, up):
        assert "from $PATH" not in done.stdout + done.stderr
    assert_program_outputs(project)
    project.run("destroy", "--yes")
    print(f"\nplugin install --file tarball {installing:.1f} s, preview {previewing:.1f} s, up {upping:.1f} s")


def test_plugin_install_from_a_directory_with_a_virtualenv_fails_in_the_cli_copy(
    tmp_path: Path, engine_dir: Path, emulator_env: dict[str, str], plugin_source: Path
) -> None:
    """Why the documented route is a tarball: the directory form copies the whole directory, and the CLI's copy
    stops at the lib64 symlink of any virtualenv in it (the .venv of the README's first command)."""
    directory = tmp_path / "with-venv"
    shutil.copytree(plugin_source, directory, ignore=shutil.ignore_patterns(".venv", "build", "*.egg-info"))
    subprocess.run([str(VENV_BIN / "python"), "-m", "venv", "--without-pip", str(directory / ".venv")], check=True)
    assert (directory / ".venv" / "lib64").is_symlink()  # venv makes it on 64-bit Linux
    project = yaml_project(tmp_path, engine_dir, emulator_env)
    done = project.run("plugin", "install", "resource", "ucloud-images", "0.1.0", "--file", str(directory),
                       check=False)
    assert done.returncode != 0
    assert COPY_ERROR in done.stderr
    assert "/.venv/lib64" in done.stderr


def test_package_add_in_a_yaml_project(
    tmp_path: Path, engine_dir: Path, emulator: Emulator, emulator_env: dict[str, str], plugin_source: Path
) -> None:
    """``pulumi package add <clone>`` installs the plugin's virtualenv and generates the SDK; with a YAML host that
    lacks Link it then stops, saying so, before it records the package. With the package recorded as
    ``pulumi package add`` would have recorded it, the program runs."""
    project = yaml_project(tmp_path, engine_dir, emulator_env)
    done, adding = timed(project, "package", "add", str(plugin_source), check=False)
    assert done.returncode != 0
    assert NO_LINK in done.stderr
    assert (plugin_source / ".venv" / "bin" / "python").exists()
    assert "packages" not in project.dir.joinpath("Pulumi.yaml").read_text(encoding="utf-8")

    project.manifest_update({"packages": {"ucloud-images": str(plugin_source)}})
    up = project.run("up", "--yes")
    assert "from $PATH" not in up.stdout + up.stderr
    assert_program_outputs(project)
    project.run("destroy", "--yes")
    print(f"\npackage add (to the Link error) {adding:.1f} s")


def test_package_add_in_a_typescript_project_needs_the_nodejs_host(
    tmp_path: Path, engine_dir: Path, emulator_env: dict[str, str], plugin_source: Path
) -> None:
    """The Node.js language host is not buildable here (its Go module is refused by the module proxy), so
    ``package add`` gets as far as the schema and stops at SDK generation; tests/engine/test_sdks.py compiles the
    TypeScript SDK that the same codegen makes."""
    project = off_path(new_project(tmp_path, engine_dir, emulator_env,
                                   manifest={"name": "routes-ts", "runtime": "nodejs"},
                                   files={"package.json": '{"name": "routes-ts", "dependencies": {}}'}))
    done = project.run("package", "add", str(plugin_source), check=False)
    assert done.returncode != 0
    assert NO_NODEJS_HOST in done.stderr


POLICY = '''\
import pulumi
from pulumi_policy import (EnforcementLevel, PolicyPack, ReportViolation, ResourceValidationArgs,
                           ResourceValidationPolicy)


def pins_need_a_repin(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == "ucloud-images:index:PinnedImage" and not args.props.get("repin"):
        team = pulumi.Config("routes").get("team")  # the stack's config, as the language host passes it
        report_violation(f"team {team} of {pulumi.get_project()}/{pulumi.get_stack()}: {args.name} has no repin")


PolicyPack("pins", enforcement_level=EnforcementLevel.MANDATORY, policies=[
    ResourceValidationPolicy(name="pins-need-a-repin", description="A pin names its repin.",
                             validate=pins_need_a_repin),
])
'''


@pytest.fixture(scope="session")
def policy_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with pulumi-policy (whose protobuf and grpcio pins differ from the test venv's), made once."""
    venv = tmp_path_factory.mktemp("policy") / "venv"
    subprocess.run([str(VENV_BIN / "python"), "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "pulumi==3.272.0",
                    "pulumi-policy>=1.21,<2"], check=True, timeout=600)
    return venv


def test_a_python_policy_pack_runs_through_the_language_host(
    tmp_path: Path, engine_dir: Path, emulator_env: dict[str, str], policy_venv: Path
) -> None:
    """Since Pulumi 3.221 the engine runs a Python policy pack through the language host's RunPlugin, which starts
    ``python -m pulumi.policy`` in the pack's directory with the stack's project, stack and config."""
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "__main__.py").write_text(POLICY, encoding="utf-8")
    (pack / "PulumiPolicy.yaml").write_text(
        "runtime:\n  name: python\n  options:\n    toolchain: pip\n"
        f"    virtualenv: {policy_venv}\n", encoding="utf-8")
    unpinned = {"type": "ucloud-images:index:PinnedImage", "properties": UBUNTU}
    manifest = {"name": "routes", "runtime": "yaml", **PROGRAM, "resources": {"pinnedUbuntu": unpinned},
                "plugins": {"providers": [{"name": "ucloud-images", "path": str(VENV_BIN)}]}}
    project = new_project(tmp_path, engine_dir, emulator_env, manifest=manifest)
    project.config("team", "web-platform")
    done, checking = timed(project, "preview", "--policy-pack", str(pack), check=False)
    assert done.returncode != 0
    assert "team web-platform of routes/dev: pinnedUbuntu has no repin" in done.stdout + done.stderr

    project.manifest_update({"resources": PROGRAM["resources"]})  # the pin with its repin
    project.run("preview", "--policy-pack", str(pack))
    print(f"\npreview with a Python policy pack {checking:.1f} s")
