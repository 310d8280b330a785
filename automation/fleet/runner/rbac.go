package runner

// The runner's permissions, exactly the verbs it uses; package install
// generates its ClusterRole from these markers (controller-gen).

// +kubebuilder:rbac:groups=slipway.dev,resources=runs,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=slipway.dev,resources=runs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=slipway.dev,resources=environments,verbs=get
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete
