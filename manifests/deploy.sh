#!/usr/bin/env bash
# make deploy / make undeploy: apply (or remove) a kustomization on the CURRENT kube context,
# saying which context and server before acting, then wait until every component is ready.
#   deploy.sh deploy   OVERLAY      apply, then wait (CRD Established, every Deployment and
#                                   DaemonSet of energysched rolled out)
#   deploy.sh undeploy OVERLAY      delete everything but the CRD (it holds your knowledge
#                                   base); PURGE_CRD=1 deletes the CRD and all EnergyProfiles too
# Environment: KUBECTL (default kubectl), KUBECONFIG as usual, TIMEOUT (default 300s).
set -euo pipefail
action=${1:?deploy or undeploy}
overlay=${2:?overlay directory}
kubectl=${KUBECTL:-kubectl}
timeout=${TIMEOUT:-300s}
ns=energysched

if ! ctx=$("$kubectl" config current-context 2>/dev/null); then
  echo "$action: no current kube context (set KUBECONFIG or 'kubectl config use-context')" >&2
  exit 1
fi
server=$("$kubectl" config view --minify -o jsonpath='{.clusters[0].cluster.server}')
echo "$action: $overlay -> context '$ctx' ($server)"

case "$action" in
deploy)
  "$kubectl" apply -k "$overlay"
  "$kubectl" wait --for=condition=Established --timeout="$timeout" \
    crd/energyprofiles.energy.thesis.io
  if ! "$kubectl" -n "$ns" get configmap energysched-monitor-config >/dev/null 2>&1; then
    echo "deploy: note: ConfigMap $ns/energysched-monitor-config is missing; the monitor" \
      "waits for it (see manifests/overlays/thesis/monitor-config.yaml)" >&2
  fi
  for workload in $("$kubectl" -n "$ns" get deployments,daemonsets \
      -l app.kubernetes.io/part-of=energysched -o name); do
    "$kubectl" -n "$ns" rollout status "$workload" --timeout="$timeout"
  done
  echo "deploy: every component of energysched is ready on '$ctx'"
  ;;
undeploy)
  selector='app.kubernetes.io/component!=knowledge-base'
  [ "${PURGE_CRD:-0}" = 1 ] && selector=''
  "$kubectl" delete -k "$overlay" --ignore-not-found --wait=true ${selector:+-l "$selector"}
  if [ -z "$selector" ]; then
    echo "undeploy: removed from '$ctx', the EnergyProfile CRD and every profile included"
  else
    echo "undeploy: removed from '$ctx'; kept the EnergyProfile CRD and your profiles" \
      "(PURGE_CRD=1 removes them too)"
  fi
  ;;
*)
  echo "usage: $0 deploy|undeploy OVERLAY" >&2
  exit 2
  ;;
esac
