// Package v1alpha1 holds the fleet's API types, group slipway.dev, version
// v1alpha1: an Environment (one environment Slipway keeps reconciled) and a
// Run (one operation on it, claimed and executed by a runner).
//
// The CRDs, deep-copy functions and RBAC are generated from these types
// and the controllers' markers by controller-gen (go generate ./automation/fleet/...).
//
// +kubebuilder:object:generate=true
// +groupName=slipway.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

//go:generate go tool controller-gen object paths=./...
//go:generate go tool controller-gen crd paths=./... output:crd:artifacts:config=../../install/crds

var (
	// GroupVersion is group version used to register these objects.
	GroupVersion = schema.GroupVersion{Group: "slipway.dev", Version: "v1alpha1"}

	// SchemeBuilder is used to add go types to the GroupVersionKind scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types in this group-version to the given scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
