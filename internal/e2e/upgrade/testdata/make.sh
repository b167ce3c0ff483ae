#!/bin/sh
# make.sh COMMIT [NAME]: builds runnel at COMMIT (in a temporary git
# worktree) and makes the upgrade fixture NAME (default: COMMIT) in this
# directory with TestMakeFixture: NAME.tar.gz (the data directory) and
# NAME.json.gz (what the earlier binary acknowledged). Run it from
# anywhere inside the repository; versitygw is built on first use.
set -eu
commit=$1
name=${2:-$1}
here=$(cd "$(dirname "$0")" && pwd)
top=$(git -C "$here" rev-parse --show-toplevel)
tmp=$(mktemp -d)
trap 'git -C "$top" worktree remove --force "$tmp/src" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
git -C "$top" worktree add --detach "$tmp/src" "$commit" >/dev/null
(cd "$tmp/src" && go build -o "$tmp/runnel" ./cmd/runnel)
full=$(git -C "$top" rev-parse --short "$commit")
cd "$here/.."
go test -count 1 -run '^TestMakeFixture$' . -old-bin "$tmp/runnel" -commit "$full" -fixture "$name"
