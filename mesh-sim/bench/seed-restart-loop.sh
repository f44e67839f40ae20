#!/usr/bin/env bash
# The baseline restart-sidecars replaces: the sidecar-refresh loop from the
# seeds (an Istio upgrade guide), kept as written apart from this comment.
# It toggles terminationGracePeriodSeconds on every Deployment of a namespace
# so each one rolls, stale or not, and waits for nothing.
# Usage: seed-restart-loop.sh NAMESPACE   (mesh-sim/bench/restart.sh runs it)
NAMESPACE=$1
     DEPLOYMENT_LIST=$(kubectl -n $NAMESPACE get deployment -o jsonpath='{.items[*].metadata.name}')
     echo "Refreshing pods in all Deployments: $DEPLOYMENT_LIST"
     for deployment_name in $DEPLOYMENT_LIST ; do
     #echo "get TERMINATION_GRACE_PERIOD_SECONDS from deployment: $deployment_name"
     TERMINATION_GRACE_PERIOD_SECONDS=$(kubectl -n $NAMESPACE get deployment "$deployment_name" -o jsonpath='{.spec.template.spec.terminationGracePeriodSeconds}')
     if [ "$TERMINATION_GRACE_PERIOD_SECONDS" -eq 30 ]; then
     TERMINATION_GRACE_PERIOD_SECONDS='31'
     else
     TERMINATION_GRACE_PERIOD_SECONDS='30'
     fi
     patch_string="{\"spec\":{\"template\":{\"spec\":{\"terminationGracePeriodSeconds\":$TERMINATION_GRACE_PERIOD_SECONDS}}}}"
     #echo $patch_string
     kubectl -n $NAMESPACE patch deployment $deployment_name -p $patch_string
     done
     echo "done."
