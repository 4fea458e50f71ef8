# Sourced by tools/stack.sh, tools/deploy.sh and tools/test.sh: the pinned Python tools in .venv
# (tools/requirements.txt), and checkov in .venv-checkov (it pins boto3 and friends differently from moto).
# Expects ROOT (the checkout) and STATE (.local) to be set.
VENV=$ROOT/.venv
CHECKOV_VENV=$ROOT/.venv-checkov

# install_venv DIR REQUIREMENTS LOG: (re)creates DIR when REQUIREMENTS is newer than its last install.
install_venv() {
  local dir=$1 requirements=$2 log=$3
  if [[ ! -f $dir/.installed || $requirements -nt $dir/.installed ]]; then
    echo "installing pinned Python tools into ${dir#"$ROOT"/} (log: ${log#"$ROOT"/})" >&2
    python3 -m venv "$dir"
    "$dir/bin/pip" install --disable-pip-version-check -q -r "$requirements" >"$log" 2>&1 ||
      { tail -n 20 "$log" >&2; return 1; }
    touch "$dir/.installed"
  fi
}

ensure_venv() {
  install_venv "$VENV" "$ROOT/tools/requirements.txt" "$STATE/pip.log"
  export PATH=$VENV/bin:$PATH
}

ensure_checkov() {
  install_venv "$CHECKOV_VENV" "$ROOT/tools/requirements-checkov.txt" "$STATE/pip-checkov.log"
}
