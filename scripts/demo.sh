#!/usr/bin/env bash
# The main job on the embedded default: bring up the hardened and weak lab deployments, audit
# each from two vantages (outside and content from the outsider host's network; inside on the
# registry host), judge the merged evidence under the lab's seed-hardened profile, and write every
# report format. Prints where the reports are. The labs stay up (tests/lab/labctl down all).
#
#   scripts/demo.sh                                   # hardened and weak (Apache -> nginx -> registry)
#   scripts/demo.sh --variant nginx --variant nginx-weak   # any lab variants, in order:
#     nginx, nginx-weak (nginx alone, the registry's recipe); apache, apache-weak (Apache alone, the
#     guide's main path); empty (hardened, nothing pushed); token; firewall
set -uo pipefail
variants=()
while [ $# -gt 0 ]; do
  case "$1" in
    --variant) [ $# -ge 2 ] || { echo "demo: --variant needs a name" >&2; exit 2; }; variants+=("$2"); shift 2 ;;
    --variant=*) variants+=("${1#--variant=}"); shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "demo: unknown argument $1 (use --variant NAME)" >&2; exit 2 ;;
  esac
done
[ ${#variants[@]} -gt 0 ] || variants=(hardened weak)
cd "$(dirname "$0")/.."
scripts/setup.sh || exit 1
OUT="${REGAUDIT_DEMO_OUT:-$PWD/regaudit-reports}"
PROFILE="$PWD/tests/lab-profile.yaml"
export REGAUDIT_STATE_DIR="${REGAUDIT_STATE_DIR:-$OUT/state}"
mkdir -p "$OUT"

for variant in "${variants[@]}"; do
  echo "== lab $variant: bringing it up"
  tests/lab/labctl up "$variant" >/dev/null || { echo "demo: lab $variant failed to start" >&2; exit 1; }
  state="/var/lib/regaudit-lab/$variant/lab.json"
  get() { jq -r "$1" "$state"; }
  base=$(get .base_dir); url=$(get .url)
  outsider=$(get .namespaces.outsider); registry=$(get .namespaces.registry)
  user=$(get .auth.username); password_file=$(get .auth.password_file)
  dir="$OUT/$variant"
  rm -rf "$dir" && mkdir -p "$dir/evidence"
  common=(--ca-bundle "$base/pki/ca.pem" --cosign-key "$(get .cosign.public_key)"
          --scan-dir "$(get .scan_dir)" --username "$user" --password-file "$password_file"
          --profile "$PROFILE" --no-progress --no-history --format json)
  echo "== lab $variant: outside and content, from the outsider host ($outsider)"
  ip netns exec "$outsider" regaudit audit "$url" "${common[@]}" \
      --evidence-out "$dir/evidence/outside.json" --output "$dir/evidence/outside" >/dev/null
  echo "== lab $variant: inside, on the registry host ($registry)"
  ip netns exec "$registry" regaudit audit --inside --fstab "$(get .fstab)" "${common[@]}" \
      --evidence-out "$dir/evidence/inside.json" --output "$dir/evidence/inside" >/dev/null
  echo "== lab $variant: judging both vantages together"
  regaudit evaluate "$dir/evidence/outside.json" "$dir/evidence/inside.json" --profile "$PROFILE" \
      --format console,json,html,sarif,junit,markdown,prometheus --output "$dir"
  echo "   (exit code $? for lab $variant)"
done
echo
echo "Reports:"
for variant in "${variants[@]}"; do
  echo "  $variant: $OUT/$variant/regaudit.html (and .json .sarif .junit.xml .md .prom)"
done
