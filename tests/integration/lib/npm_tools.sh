# npm packages that tests use (sourced): installed once, at pinned versions, into a cache
# outside the tree, ${HD_NPM_CACHE:-$HOME/.cache/herald/npm}/<set>, and reused from there.
# tools/deps.sh fills the cache ahead; a test fills it on first use.

# npm_tools SET PKG@VERSION...: makes sure SET holds these packages; prints its directory.
npm_tools() {
    local set=$1
    shift
    local dir="${HD_NPM_CACHE:-$HOME/.cache/herald/npm}/$set" want have
    want="$*"
    have=$(cat "$dir/.herald-pins" 2>/dev/null || true)
    if [ "$want" != "$have" ] || [ ! -d "$dir/node_modules" ]; then
        command -v npm >/dev/null 2>&1 || { echo "npm is not installed (tools/deps.sh)" >&2; return 1; }
        mkdir -p "$dir"
        [ -f "$dir/package.json" ] || echo '{"private": true}' >"$dir/package.json"
        (cd "$dir" && timeout 600 npm install --no-audit --no-fund --silent --save-exact "$@" \
            >"$dir/npm-install.log" 2>&1) || { cat "$dir/npm-install.log" >&2; return 1; }
        echo "$want" >"$dir/.herald-pins"
    fi
    echo "$dir"
}

# The validator set used by the OpenAPI test.
HD_NPM_OPENAPI=(@seriousme/openapi-schema-validator@2.11.0 ajv@8.17.1 ajv-formats@3.0.1)
