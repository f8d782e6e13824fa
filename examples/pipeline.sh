#!/usr/bin/env bash
# Resolve the scratch host's image in a pipeline and hand it to the stack as plain config (`scratchImageId`,
# which examples/python boots the scratch host on instead of looking the image up itself).
#
#   examples/pipeline.sh [STACK]
#
# Needs `ucloud-images` (installed with the package: see the README's Installing) and `pulumi` on PATH, and
# UCloud settings in the UCLOUD_* environment (UCLOUD_PUBLIC_KEY, UCLOUD_PRIVATE_KEY, UCLOUD_REGION, ...) or the
# ~/.ucloud profile files. `ucloud-images find` prints the one matching image ID and nothing else; when nothing
# matches (exit 3), several match (4) or the API fails (5) it says why on stderr, and this script stops before
# touching the stack.
set -euo pipefail

stack="${1:-}"
# Look where the stack's hosts are: its ucloud:region and zone, when it sets them (else the UCLOUD_* settings'
# region, any zone).
stack_config() { pulumi config get ${stack:+--stack "$stack"} "$1" 2>/dev/null || true; }
region="$(stack_config ucloud:region)"
zone="$(stack_config zone)"

image_id="$(ucloud-images find \
    ${region:+--region "$region"} \
    ${zone:+--zone "$zone"} \
    --image-type base \
    --os-type linux \
    --name-regex '^Ubuntu 22\.04' \
    --architecture x86_64 \
    --most-recent)"

pulumi config set ${stack:+--stack "$stack"} scratchImageId "$image_id"
echo "scratchImageId = $image_id" >&2
