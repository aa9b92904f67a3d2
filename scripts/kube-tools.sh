#!/usr/bin/env bash
# Build the local Kubernetes control-plane tools (etcd, kube-apiserver,
# kube-scheduler, kwok) from the modules pinned under tools/kube, and print
# the directory that contains all four binaries.
#
# Each binary goes to $SCHEDULERD_CACHE/tools/<name>-<version>/<name>
# (default cache: $HOME/.cache/schedulerd), so changing a pin in
# tools/kube/*/go.mod builds a new binary and leaves the old one alone.
# A binary is built into a temporary file and renamed into place, so an
# interrupted build never leaves a partial binary behind. When every binary
# is present the script only creates symlinks and runs no go command.
#
# Progress goes to stderr, and stdout contains only the bin directory, so
# callers can run: bin=$(scripts/kube-tools.sh)
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools_dir="$repo_root/tools/kube"
cache_dir="${SCHEDULERD_CACHE:-$HOME/.cache/schedulerd}/tools"

log() { echo "kube-tools: $*" >&2; }

# pinned_version MODULE_DIR MODULE_PATH prints the version that the go.mod in
# MODULE_DIR requires for MODULE_PATH. It reads go.mod directly so that a
# cached run needs no go command.
pinned_version() {
	local version
	# Match both "require MOD VERSION" and a line inside a require block.
	version=$(awk -v mod="$2" '
		$1 == "require" { $1 = ""; $0 = $0 }
		$1 == mod && $2 ~ /^v[0-9]/ { print $2; exit }
	' "$1/go.mod")
	if [[ -z "$version" ]]; then
		log "no version of $2 is required in $1/go.mod; add it with 'go get -tool PACKAGE@VERSION' in $1"
		exit 1
	fi
	echo "$version"
}

# build_tool NAME MODULE_DIR PACKAGE VERSION LDFLAGS builds PACKAGE from the
# module in MODULE_DIR unless the versioned binary exists, and prints its path.
build_tool() {
	local name=$1 module_dir=$2 package=$3 version=$4 ldflags=$5
	local out_dir="$cache_dir/$name-$version"
	local out="$out_dir/$name"
	if [[ -x "$out" ]]; then
		echo "$out"
		return
	fi

	mkdir -p "$out_dir"
	# The lock in main keeps other builds out of this directory, so any
	# temporary file here is left over from a build that was killed.
	rm -f "$out_dir/.$name.tmp."*
	local tmp="$out_dir/.$name.tmp.$$"
	# build_tool runs in a command substitution, so this trap is local to
	# it. The path is expanded now because the local variable is gone when
	# the subshell exits.
	# shellcheck disable=SC2064
	trap "rm -f $(printf %q "$tmp")" EXIT
	log "building $name $version"
	local start=$SECONDS
	# GOWORK=off keeps a go.work at the repository root from pulling the tool
	# modules into the main module's build list. CGO_ENABLED=0 gives static
	# binaries, as upstream releases are.
	if ! (cd "$module_dir" && GOWORK=off CGO_ENABLED=0 \
		go build -trimpath -ldflags "$ldflags" -o "$tmp" "$package"); then
		log "building $name failed; the go output above names the cause"
		exit 1
	fi
	mv -f "$tmp" "$out"
	log "built $name $version in $((SECONDS - start)) s"
	echo "$out"
}

# log_first_build_time KUBE_VERSION warns that the build will take minutes
# when kube-apiserver is not cached yet.
log_first_build_time() {
	if [[ ! -x "$cache_dir/kube-apiserver-$1/kube-apiserver" ]]; then
		log "building the missing tools (all four took 11 minutes on 2 shared cores once)"
	fi
}

main() {
	mkdir -p "$cache_dir"
	# Serialize concurrent callers (for example parallel test packages) so
	# that each tool is built once, and only one large build runs at a time.
	exec 9>"$cache_dir/.kube-tools.lock"
	flock 9

	local kube_version etcd_version kwok_version
	kube_version=$(pinned_version "$tools_dir/kubernetes" k8s.io/kubernetes)
	etcd_version=$(pinned_version "$tools_dir/etcd" go.etcd.io/etcd/server/v3)
	kwok_version=$(pinned_version "$tools_dir/kwok" sigs.k8s.io/kwok)

	# Clients such as kubectl and client-go discovery parse the server
	# version, and without these flags it is "v0.0.0-master+$Format:%H$".
	local major minor
	major=${kube_version#v}
	major=${major%%.*}
	minor=${kube_version#v*.}
	minor=${minor%%.*}
	local version_package=k8s.io/component-base/version
	local kube_ldflags="-s -w -X $version_package.gitVersion=$kube_version"
	kube_ldflags+=" -X $version_package.gitMajor=$major -X $version_package.gitMinor=$minor"
	kube_ldflags+=" -X $version_package.gitTreeState=clean"

	log_first_build_time "$kube_version"

	local -A binaries
	binaries[etcd]=$(build_tool etcd "$tools_dir/etcd" go.etcd.io/etcd/server/v3 \
		"$etcd_version" "-s -w")
	binaries[kube-apiserver]=$(build_tool kube-apiserver "$tools_dir/kubernetes" \
		k8s.io/kubernetes/cmd/kube-apiserver "$kube_version" "$kube_ldflags")
	binaries[kube-scheduler]=$(build_tool kube-scheduler "$tools_dir/kubernetes" \
		k8s.io/kubernetes/cmd/kube-scheduler "$kube_version" "$kube_ldflags")
	binaries[kwok]=$(build_tool kwok "$tools_dir/kwok" sigs.k8s.io/kwok/cmd/kwok \
		"$kwok_version" "-s -w")

	# The bin directory is named after all pinned versions, so checkouts with
	# different pins never share one.
	local bin_dir="$cache_dir/bin-etcd-$etcd_version-kubernetes-$kube_version-kwok-$kwok_version"
	mkdir -p "$bin_dir"
	local name
	for name in "${!binaries[@]}"; do
		ln -sfn "${binaries[$name]}" "$bin_dir/$name"
	done
	echo "$bin_dir"
}

main "$@"
