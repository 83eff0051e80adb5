//go:build tools

// The Kubernetes commands this module builds, imported so that `go mod tidy` keeps their
// dependencies: kube-apiserver, kube-controller-manager and kubectl of the pinned k8s.io/kubernetes,
// whose go.mod replaces its k8s.io staging modules with local paths (which this module
// replaces with their published versions instead).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
