"""SDKs for other languages, generated from schema.json with pkg/v3's codegen, compile against Pulumi's own SDKs.

TypeScript: ``tsc`` against ``@pulumi/pulumi`` from npm. Go: ``go build`` against ``github.com/pulumi/pulumi/sdk/v3``
at the engine's version. Each also compiles a small program that calls ``getImages`` and declares a
``PinnedImage``, so the generated API is the one the docs show.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pulumi_ucloud_images._pulumi.schema import GO_IMPORT_BASE_PATH
from tests.engine.engine_project import ROOT, TOOL_HOME

pytestmark = [pytest.mark.engine, pytest.mark.slow]

SCHEMA = ROOT / "schema.json"
# Exact versions, so a new release on npm cannot change what this test compiles against.
NPM_PINS = {"dependencies": {"@pulumi/pulumi": "3.276.0"},
            "devDependencies": {"typescript": "4.9.5", "@types/node": "20.9.5"}}
ENGINE_GO_MOD = ROOT / "tools" / "pulumi-engine" / "go.mod"

TS_PROGRAM = """\
import * as pulumi from "@pulumi/pulumi";
import * as images from "./index";

export async function ids(): Promise<string[]> {
    const ubuntu = await images.getImages({ osType: "Linux", nameRegex: "^Ubuntu 22\\\\.04", mostRecent: true });
    return [ubuntu.imageId, ...ubuntu.ids];
}

export const pinned: pulumi.Output<string> = new images.PinnedImage("golden", {
    imageType: "Custom",
    nameRegex: "^golden-web-",
    mostRecent: true,
    repin: "2026-12-01",
}).imageId;

export const viaOutput: pulumi.Output<string> = images.getImagesOutput({ osType: "Linux" }).imageId;
"""

GO_PROGRAM = """\
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	images "%s"
)

func main() {
	pulumi.Run(func(ctx *pulumi.Context) error {
		linux := images.OsTypeLinux
		ubuntu, err := images.GetImages(ctx, &images.GetImagesArgs{
			OsType:     &linux,
			NameRegex:  pulumi.StringRef("^Ubuntu 22\\\\.04"),
			MostRecent: pulumi.BoolRef(true),
		})
		if err != nil {
			return err
		}
		pin, err := images.NewPinnedImage(ctx, "golden", &images.PinnedImageArgs{
			ImageType:  images.ImageTypeCustom,
			NameRegex:  pulumi.String("^golden-web-"),
			MostRecent: pulumi.Bool(true),
		})
		if err != nil {
			return err
		}
		ctx.Export("ubuntu", pulumi.String(ubuntu.ImageId))
		ctx.Export("pinned", pin.ImageId)
		return nil
	})
}
"""


def generate(engine_dir: Path, language: str, out: Path) -> None:
    subprocess.run([str(engine_dir / "pulumi-sdkgen"), "--language", language, "--schema", str(SCHEMA),
                    "--out", str(out)], check=True, capture_output=True, text=True, timeout=120)


def run(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> None:
    """Run a build tool with the caller's HOME, so that Go's and npm's caches are reused, not started anew."""
    env = {**(env or os.environ), "HOME": TOOL_HOME}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is needed to compile the generated SDK and is not on PATH")
    return path


@pytest.mark.timeout(900)  # a first npm install; later runs reuse npm's cache
def test_the_typescript_sdk_compiles_with_tsc(tmp_path: Path, engine_dir: Path) -> None:
    sdk = tmp_path / "nodejs"
    generate(engine_dir, "nodejs", sdk)
    (sdk / "check.ts").write_text(TS_PROGRAM, encoding="utf-8")
    config = json.loads("\n".join(line for line in (sdk / "tsconfig.json").read_text().splitlines()
                                  if not line.strip().startswith("//")))
    config["files"].append("check.ts")
    (sdk / "tsconfig.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    manifest = json.loads((sdk / "package.json").read_text(encoding="utf-8"))
    for section, pins in NPM_PINS.items():
        assert set(manifest[section]) == set(pins)  # the generated SDK needs exactly these
        manifest[section] = pins
    (sdk / "package.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    run(tool("npm"), "install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error",
        cwd=sdk)
    run(str(sdk / "node_modules" / ".bin" / "tsc"), "--noEmit", "false", cwd=sdk)
    assert (sdk / "bin" / "getImages.js").is_file() and (sdk / "bin" / "pinnedImage.d.ts").is_file()


@pytest.mark.timeout(900)  # a first build of sdk/v3's dependencies; later runs reuse Go's build cache
def test_the_go_sdk_builds(tmp_path: Path, engine_dir: Path) -> None:
    """Built in a Go workspace with the engine's wrapper module, so it uses the very dependency versions (and
    build cache) the engine was built with, and nothing outside the go.sum kept in the repository."""
    sdk = tmp_path / "go"
    generate(engine_dir, "go", sdk)
    assert (sdk / "ucloudimages" / "getImages.go").is_file()
    version = next(line.split()[1] for line in ENGINE_GO_MOD.read_text().splitlines()
                   if line.strip().startswith("github.com/pulumi/pulumi/sdk/v3 "))
    module = GO_IMPORT_BASE_PATH.rsplit("/", 1)[0]
    (sdk / "go.mod").write_text(f"module {module}\n\ngo 1.26.6\n\nrequire github.com/pulumi/pulumi/sdk/v3 {version}\n")
    (tmp_path / "go.work").write_text(f"go 1.26.6\n\nuse (\n\t./go\n\t{ENGINE_GO_MOD.parent}\n)\n")
    program = sdk / "cmd" / "check"
    program.mkdir(parents=True)
    (program / "main.go").write_text(GO_PROGRAM % GO_IMPORT_BASE_PATH, encoding="utf-8")
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": ""}
    go = tool("go")
    run(go, "build", "-trimpath", "./...", cwd=sdk, env=env)
    run(go, "vet", "./...", cwd=sdk, env=env)
