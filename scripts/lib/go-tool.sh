# build_go_tool NAME PACKAGE VERSION ABOUT: prints the path of the binary NAME that
# go install builds from PACKAGE@VERSION, in $SCHEDULERD_CACHE/tools/NAME-VERSION/NAME
# (default cache: $HOME/.cache/schedulerd). The binary is built once per version: when it
# exists no go command runs. Builds of all tool scripts take one lock, so only one large
# build runs at a time and concurrent callers build each tool once. go install writes into
# a temporary directory and the binary is renamed into place from there, so an interrupted
# build never leaves a partial binary behind. ABOUT is shown before the build, for example
# how long it takes. Progress goes to stderr.
build_go_tool() {
	local name=$1 package=$2 version=$3 about=$4
	local cache_dir="${SCHEDULERD_CACHE:-$HOME/.cache/schedulerd}/tools"
	local out_dir="$cache_dir/$name-$version"
	local out="$out_dir/$name"

	if [[ -x "$out" ]]; then
		echo "$out"
		return 0
	fi
	mkdir -p "$out_dir"
	exec 9>"$cache_dir/.lock"
	flock 9
	if [[ -x "$out" ]]; then
		echo "$out"
		return 0
	fi

	local tmp
	tmp=$(mktemp -d "$out_dir/.build.XXXXXX")
	# shellcheck disable=SC2064 # tmp is expanded now, on purpose
	trap "rm -rf '$tmp'" EXIT
	echo "$name-tools: building $name $version ($about)" >&2
	local start=$SECONDS
	# GOWORK=off keeps a go.work at the repository root out of the build, and the empty
	# GOFLAGS keeps flags meant for schedulerd's own module (such as -mod) away from the
	# tool's.
	if ! GOWORK=off GOFLAGS= GOBIN="$tmp" go install -trimpath -ldflags "-s -w" "$package@$version"; then
		echo "$name-tools: building $name failed; the go output above names the cause" >&2
		return 1
	fi
	mv -f "$tmp/$name" "$out"
	echo "$name-tools: built $name $version in $((SECONDS - start)) s" >&2
	echo "$out"
}
