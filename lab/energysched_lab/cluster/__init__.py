"""The local control plane: real etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and KWOK, built from their published Go modules and run as
local processes on loopback."""
