#!/usr/bin/env bash
# Resolve the image for the web hosts in a pipeline and hand it to the stack as plain config.
#
#   examples/pipeline.sh [STACK]
#
# Needs `ucloud-images` (pip install pulumi-ucloud-images) and `pulumi` on PATH, and UCloud settings in the
# UCLOUD_* environment (UCLOUD_PUBLIC_KEY, UCLOUD_PRIVATE_KEY, UCLOUD_REGION, ...) or the ~/.ucloud profile
# files. `ucloud-images find` prints the one matching image ID and nothing else; when nothing matches (exit 3),
# several match (4) or the API fails (5) it says why on stderr, and this script stops before touching the stack.
set -euo pipefail

stack="${1:-}"

image_id="$(ucloud-images find \
    --image-type base \
    --os-type linux \
    --name-regex '^Ubuntu 22\.04' \
    --architecture x86_64 \
    --most-recent)"

pulumi config set ${stack:+--stack "$stack"} webImageId "$image_id"
echo "webImageId = $image_id" >&2
