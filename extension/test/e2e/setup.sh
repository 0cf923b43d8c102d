#!/usr/bin/env bash
# Installs code-server and playwright-core for the real-VS-Code test, with
# the workarounds a root, offline-ish machine needs (see the project notes):
# seed @vscode/ripgrep's download cache from Debian's rg, allow code-server's
# postinstall as root, let npx run node-gyp, and use the system Node headers.
set -euo pipefail
cd "$(dirname "$0")"
if [ -x node_modules/.bin/code-server ] && [ -d node_modules/playwright-core ]; then
	exit 0
fi
seed=$(mktemp -d)
mkdir -p "$seed/vscode-ripgrep-cache-1.15.11" "$seed/rg"
cp "$(command -v rg)" "$seed/rg/"
tar czf "$seed/vscode-ripgrep-cache-1.15.11/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" -C "$seed/rg" rg
if [ -d /usr/include/node ]; then export npm_config_nodedir=/usr; fi
TMPDIR="$seed" npm_config_unsafe_perm=true npm_config_yes=true \
	npm_config_dangerously_allow_all_scripts=true \
	npm "${1:-ci}" --foreground-scripts --no-audit --no-fund
rm -rf "$seed"
