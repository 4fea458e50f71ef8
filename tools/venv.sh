# Sourced by tools/stack.sh and tools/deploy.sh: the pinned Python tools in .venv (tools/requirements.txt).
# Expects ROOT (the checkout) and STATE (.local) to be set.
VENV=$ROOT/.venv

ensure_venv() {
  if [[ ! -f $VENV/.installed || $ROOT/tools/requirements.txt -nt $VENV/.installed ]]; then
    echo "installing pinned Python tools into .venv (log: .local/pip.log)" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --disable-pip-version-check -q -r "$ROOT/tools/requirements.txt" >"$STATE/pip.log" 2>&1 ||
      { tail -n 20 "$STATE/pip.log" >&2; return 1; }
    touch "$VENV/.installed"
  fi
  export PATH=$VENV/bin:$PATH
}

# checkov lives in its own venv: it pins boto3 and friends differently from moto.
CHECKOV_VENV=$ROOT/.venv-checkov

ensure_checkov() {
  local requirements=$ROOT/tools/requirements-checkov.txt
  if [[ ! -f $CHECKOV_VENV/.installed || $requirements -nt $CHECKOV_VENV/.installed ]]; then
    echo "installing pinned checkov into .venv-checkov (log: .local/pip-checkov.log)" >&2
    python3 -m venv "$CHECKOV_VENV"
    "$CHECKOV_VENV/bin/pip" install --disable-pip-version-check -q -r "$requirements" >"$STATE/pip-checkov.log" 2>&1 ||
      { tail -n 20 "$STATE/pip-checkov.log" >&2; return 1; }
    touch "$CHECKOV_VENV/.installed"
  fi
}
