#!/usr/bin/env bash
# Check routewarden's deployment, offline:
#   1. kubectl kustomize builds manifests/base and every overlay;
#   2. the built objects validate against the Kubernetes schemas (kubernetes-validate,
#      strict, no network) and the custom resources against tests/deploy/schemas/,
#      and a broken copy of each object is rejected (the validation can fail);
#   3. the built overlays keep the deployment's promises (check_policy.py), with
#      remediation off (no --remediate, no MachineConfig, the agent as nobody);
#   4. the PrometheusRule's spec, extracted from each overlay, passes
#      `promtool check rules` and the unit tests in rules_test*.yaml;
#   5. breaking any one alert (never firing, firing without its `for`, reading
#      its series at an instant instead of over a window) makes those unit tests
#      fail;
#   6. the overlay of your own that the README's Install section shows builds,
#      with the SCC and RBAC still before the DaemonSet, and its patches (severity,
#      architecture) do what it says;
#   7. the dashboard (dashboards.py): the Grafana model and the console's copy,
#      every query valid PromQL (promtool), and each component added to an
#      overlay builds, validates, and puts its ConfigMap where its reader looks;
#   8. the remediation component added to each overlay: it builds, validates, keeps
#      every promise of step 3 and its own (policy_remediation.py: the flag and
#      the state directory on the agent only, its own non-root UID for the pod,
#      nothing else changed; one MachineConfig per pool installing exactly the
#      polkit rule, the sysusers.d line and the unit that applies it at boot, each
#      the component's file byte for byte; the rule granting exactly what
#      remediation needs to the user that line makes, with the pod's UID, never
#      nobody), and breaking any one of them, its `test` op included, is caught
#      (remediation_self_test.py).
# Installs what it needs if missing (PyPI: kubernetes-validate; Debian: prometheus
# for promtool); kubectl must be installed. Exits non-zero on any failure and ends
# with "N passed, M failed".
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# OpenShift 4.14 (Kubernetes 1.27, the first to honour openshift.io/required-scc)
# and the newest schemas kubernetes-validate ships.
K8S_VERSIONS=(1.27.0 1.37.0)
OVERLAYS=(kubernetes openshift)
passed=0
failed=0

# step NAME COMMAND...: run, show its output indented, count the result.
step() {
    local name=$1
    shift
    echo "== $name"
    if "$@" >"$work/out" 2>&1; then
        sed 's/^/   /' "$work/out"
        echo "   PASS $name"
        passed=$((passed + 1))
    else
        sed 's/^/   /' "$work/out"
        echo "   FAIL $name"
        failed=$((failed + 1))
    fi
}

# expect_test_failure NAME COMMAND...: promtool test rules must fail on an
# assertion (FAILED), not on a rules file it cannot load.
expect_test_failure() {
    local name=$1
    shift
    if "$@" >"$work/out" 2>&1; then
        echo "   FAIL $name: not caught"
        failed=$((failed + 1))
    elif grep -q "alertname:" "$work/out" && ! grep -q "could not parse\|parse error\|error loading" "$work/out"; then
        echo "   PASS $name: caught by $(grep -c 'alertname:' "$work/out") failed assertion(s)"
        passed=$((passed + 1))
    else
        sed 's/^/   /' "$work/out"
        echo "   FAIL $name: promtool failed for another reason"
        failed=$((failed + 1))
    fi
}

ensure_tools() {
    if ! command -v kubectl >/dev/null; then
        echo "kubectl not found: it builds the kustomize overlays (kubectl kustomize)" >&2
        exit 1
    fi
    if ! python3 -c 'import kubernetes_validate, jsonschema, referencing, yaml' 2>/dev/null; then
        echo "installing kubernetes-validate from PyPI"
        python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate
    fi
    if ! command -v promtool >/dev/null; then
        echo "installing promtool (Debian package prometheus)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq prometheus >/dev/null
    fi
    echo "tools: $(kubectl version --client 2>/dev/null | head -1), $(promtool --version 2>&1 | head -1)," \
        "kubernetes-validate $(python3 -c 'import kubernetes_validate.version as v; print(v.__version__)')"
}

# Run offline for real where we may: a fresh network namespace has no network.
offline() {
    if unshare -n true 2>/dev/null; then
        echo "(offline: in a new network namespace, without any network)"
        unshare -n "$@"
    else
        echo "(unshare -n unavailable: running with the network as it is)"
        "$@"
    fi
}

# alerts_of RULES: one line per alert, "NAME MODES" with the mutations that apply
# to it (never always; instant when it has a `for`; window when it reads a window).
alerts_of() {
    python3 -c 'import sys, yaml
for g in yaml.safe_load(open(sys.argv[1]))["groups"]:
    for r in g["rules"]:
        if "alert" in r:
            modes = ["never"] + ["instant"] * ("for" in r) + ["window"] * ("last_over_time(" in r["expr"])
            print(r["alert"], ",".join(modes))' "$1"
}

mutation_name() {
    case $1 in
        never) echo "made to fire never" ;;
        instant) echo "made to fire without its for" ;;
        window) echo "made to read its series at an instant" ;;
    esac
}

check_rules() {
    local overlay=$1 dir=$work/rules-$1
    mkdir -p "$dir"
    step "$overlay: extract the PrometheusRule" \
        python3 "$here/extract_rules.py" "$work/$overlay.yaml" "$dir/routewarden-rules.yaml"
    cp "$here"/rules_test*.yaml "$dir/"
    step "$overlay: promtool check rules" promtool check rules --lint=all --lint-fatal "$dir/routewarden-rules.yaml"
    step "$overlay: promtool test rules" promtool test rules "$dir"/rules_test*.yaml
}

# Every alert has a test that needs it to fire, one that needs its `for`, and one
# with failed scrapes that needs its window.
check_mutations() {
    local dir=$work/rules-openshift mdir=$work/mutants alert modes mode
    echo "== the rule tests catch a broken alert"
    while read -r alert modes; do
        for mode in ${modes//,/ }; do
            rm -rf "$mdir" && mkdir -p "$mdir"
            cp "$dir"/rules_test*.yaml "$mdir/"
            python3 "$here/mutate_rules.py" "$dir/routewarden-rules.yaml" "$alert" "$mode" \
                "$mdir/routewarden-rules.yaml"
            expect_test_failure "$alert $(mutation_name "$mode")" \
                promtool test rules "$mdir"/rules_test*.yaml
        done
    done < <(alerts_of "$dir/routewarden-rules.yaml")
}

# The README's own overlay (Install, "Choose the image"), built from this
# checkout: it must build and keep the SCC and RBAC before the DaemonSet; with the
# README's patches added, they must do what it says.
check_readme_overlay() {
    local dir=$work/my-routewarden
    step "README's overlay of your own: extracted" \
        python3 "$here/readme_overlay.py" write "$repo/README.md" "$repo" "$dir"
    step "README's overlay of your own builds" kubectl kustomize "$dir/plain" -o "$work/readme.yaml"
    step "README's overlay of your own: apply order" \
        python3 "$here/check_policy.py" order "$work/readme.yaml"
    step "README's patches (severity, architecture) build" \
        kubectl kustomize "$dir/patched" -o "$work/readme-patched.yaml"
    step "README's patches do what it says" \
        python3 "$here/readme_overlay.py" check-patched "$work/readme-patched.yaml"
    step "README's severity override refuses rules in another order (its test op)" \
        expect_build_failure "$dir/reordered" "testing value /spec/groups/0/rules/0/alert"
    step "README's runbook URL replacement builds" \
        kubectl kustomize "$dir/runbooks" -o "$work/readme-runbooks.yaml"
    step "README's runbook URL replacement points every alert at the mirror" \
        python3 "$here/readme_overlay.py" check-runbooks "$work/readme-runbooks.yaml" "$dir"
}

# expect_build_failure DIR WORDS: kubectl kustomize DIR must fail, saying WORDS.
expect_build_failure() {
    local out
    if out=$(kubectl kustomize "$1" 2>&1); then
        echo "built, and should not have: a patch applied to the wrong rule"
        return 1
    fi
    echo "$out" | tail -3
    grep -qF "$2" <<<"$out"
}

check_dashboards() {
    local dir=$work/dashboards pair overlay component
    mkdir -p "$dir"
    step "dashboard: the Grafana model, the console's copy, the README" python3 "$here/dashboards.py" check
    step "dashboard: the check catches each kind of breakage" python3 "$here/dashboards.py" self-test
    step "dashboard: every query written as a recording rule" python3 "$here/dashboards.py" rules "$dir/queries.json"
    step "dashboard: every query is valid PromQL" promtool check rules --lint=all --lint-fatal "$dir/queries.json"
    for pair in kubernetes:dashboard-grafana openshift:dashboard-openshift openshift:dashboard-grafana; do
        overlay=${pair%%:*} component=${pair#*:}
        python3 "$here/dashboards.py" overlay "$dir/$overlay-$component" "$overlay" "$component"
        step "$overlay with components/$component builds" \
            kubectl kustomize "$dir/$overlay-$component" -o "$dir/$overlay-$component.yaml"
        step "$overlay with components/$component: schemas offline" \
            offline python3 "$here/validate_manifests.py" "${K8S_VERSIONS[@]/#/--k8s-version=}" \
            "$dir/$overlay-$component.yaml"
        step "$overlay with components/$component: the ConfigMap" \
            python3 "$here/dashboards.py" built "$dir/$overlay-$component.yaml" "$component"
    done
}

# The remediation component in an overlay of one's own (own_overlay.py), checked
# against the same overlay built without it ($work/OVERLAY.yaml).
check_remediation() {
    local dir=$work/remediation overlay
    mkdir -p "$dir"
    for overlay in "${OVERLAYS[@]}"; do
        python3 "$here/own_overlay.py" "$dir/$overlay" "$overlay" remediation
        step "$overlay with components/remediation builds" \
            kubectl kustomize "$dir/$overlay" -o "$dir/$overlay.yaml"
        step "$overlay with components/remediation: schemas offline, with self-test" \
            offline python3 "$here/validate_manifests.py" --self-test \
            "${K8S_VERSIONS[@]/#/--k8s-version=}" "$dir/$overlay.yaml"
        step "$overlay with components/remediation: deployment policy, remediation on" \
            python3 "$here/check_policy.py" "$overlay" "$dir/$overlay.yaml" --remediation "$work/$overlay.yaml"
    done
    step "remediation: the checks catch each kind of breakage" \
        python3 "$here/remediation_self_test.py" "$work/openshift.yaml" "$dir/openshift.yaml" "$dir/self-test"
}

main() {
    cd "$repo"
    ensure_tools
    step "kustomize build manifests/base" kubectl kustomize manifests/base -o "$work/base.yaml"
    for overlay in "${OVERLAYS[@]}"; do
        step "kustomize build manifests/overlays/$overlay" \
            kubectl kustomize "manifests/overlays/$overlay" -o "$work/$overlay.yaml"
        step "$overlay: schemas (Kubernetes ${K8S_VERSIONS[*]}, CRDs) offline, with self-test" \
            offline python3 "$here/validate_manifests.py" --self-test \
            "${K8S_VERSIONS[@]/#/--k8s-version=}" "$work/$overlay.yaml"
        step "$overlay: deployment policy" python3 "$here/check_policy.py" "$overlay" "$work/$overlay.yaml"
        check_rules "$overlay"
    done
    check_mutations
    check_readme_overlay
    check_dashboards
    check_remediation
    echo
    echo "deploy checks: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

main "$@"
