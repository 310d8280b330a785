package operator

// The operator's permissions, exactly the verbs it uses; package install
// generates its ClusterRole and Role from these markers (controller-gen).

// +kubebuilder:rbac:groups=slipway.dev,resources=environments,verbs=get;list;watch;update;patch;delete
// +kubebuilder:rbac:groups=slipway.dev,resources=environments/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=slipway.dev,resources=environments/finalizers,verbs=update
// +kubebuilder:rbac:groups=slipway.dev,resources=runs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=slipway.dev,resources=runs/status,verbs=get
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=slipway-system,resources=leases,verbs=get;list;watch;create;update;patch
