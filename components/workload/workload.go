// Package workload is a Kubernetes application: Deployment, Service,
// HorizontalPodAutoscaler and PodDisruptionBudget with probes, requests and
// limits, a non-root user, a read-only root file system and no privilege
// escalation by default.
//
// Three rollout strategies:
//   - Rolling: one Deployment updated in place (maxSurge / maxUnavailable).
//   - BlueGreen: each version runs in its own Deployment (a "slot" named from
//     the version); the Service selector switches to the new slot only after
//     the engine has seen it Ready, and the old slot is deleted afterwards. If
//     the new slot never becomes Ready the update fails before the switch and
//     the old slot keeps serving. With BlueGreen.ActiveImage the switch is a
//     phase of its own: the new version is previewed beside the active one
//     behind a <Name>-preview Service (Preview), the main Service's selector
//     moves to it with the old slot kept running (Switched, so switching back
//     starts no pod), and the promotion removes the old slot (Promoted).
//   - Canary: a canary Deployment of the new version runs beside the stable
//     one, which is never touched until the promotion, and takes
//     Canary.Weight percent of the traffic: by the ratio of ready pods behind
//     the workload's Service, and, with Canary.Route, by the backend weights
//     of a Gateway API HTTPRoute over a stable and a canary Service. Promote
//     moves stable to the canary's version and removes the canary; Rollback
//     removes the canary and leaves stable alone. ProgressCanary drives these
//     steps, gated on the canary becoming Ready.
//
// With the HorizontalPodAutoscaler on (the default), the autoscaler owns the
// replica count of the Deployment it scales: Replicas is the HPA's
// minReplicas and that Deployment's size when it is created, and the
// Deployment ignores changes to spec.replicas (ScaledField) from then on, so
// neither an update nor a drift remediation resets what the autoscaler chose,
// and a drift check does not report it. A new blue/green slot starts at
// Replicas.
package workload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"time"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	autoscalingv2 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/autoscaling/v2"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	policyv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/policy/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Type is the Pulumi type token of the component.
const Type = "slipway:workload:Workload"

// ScaledField is the Deployment property the HPA owns: with the HPA on, the
// scaled Deployment sets it at creation and ignores changes to it after
// (pulumi.IgnoreChanges), so the autoscaler's replica count is neither
// reverted by an update nor reported as drift.
const ScaledField = "spec.replicas"

// Strategy is a rollout strategy.
type Strategy string

// Rollout strategies.
const (
	Rolling   Strategy = "rolling"
	BlueGreen Strategy = "bluegreen"
	Canary    Strategy = "canary"
)

// CanaryArgs configures the canary strategy.
type CanaryArgs struct {
	// StableImage is the version serving today. When it equals Args.Image no
	// canary runs (the promoted or initial state).
	StableImage string
	// Weight is the canary's share of the traffic in percent (default 20).
	// Without Route it is the share of the pods behind the workload's
	// Service: the canary runs round(Replicas × Weight / (100 − Weight)) pods,
	// at least one, beside stable's Replicas, so 1-99. With Route it is the
	// canary backend's weight in the HTTPRoute (1-100; 100 sends every
	// request to the canary before the promotion) and the canary runs
	// ceil(Replicas × Weight / 100) pods, at least one.
	Weight int
	// Route, when set, splits the traffic with a Gateway API HTTPRoute.
	Route *RouteArgs
}

// RouteArgs is the Gateway API HTTPRoute (gateway.networking.k8s.io/v1) of
// a canary workload. The workload then has two more Services,
// <Name>-stable and <Name>-canary (selecting each track's pods), and an
// HTTPRoute <Name> attached to the Gateway, whose one rule sends
// 100 − Weight percent of the requests to stable and Weight to the canary
// (canary weight 0 when no canary runs). The Gateway API CRDs must be
// installed in the cluster.
type RouteArgs struct {
	// Gateway is the name of the Gateway the route attaches to.
	Gateway string
	// GatewayNamespace is the Gateway's namespace (default the workload's).
	GatewayNamespace string
	// Hostnames are the route's host names (default: every host the
	// Gateway's listener accepts).
	Hostnames []string
}

// RouteAPIVersion and RouteKind are the HTTPRoute's type.
const (
	RouteAPIVersion = "gateway.networking.k8s.io/v1"
	RouteKind       = "HTTPRoute"
)

// canaryReplicas is the canary Deployment's size for weight w (see
// CanaryArgs.Weight).
func (a Args) canaryReplicas() int {
	w, r := a.Canary.Weight, a.Replicas
	if a.Canary.Route != nil {
		return max(1, (r*w+99)/100)
	}
	return max(1, int(math.Round(float64(r*w)/float64(100-w))))
}

// BlueGreenArgs are the phases of a blue/green rollout as data. With
// ActiveImage empty or equal to Args.Image there is one slot, Image's,
// behind the Service (the initial or promoted state; a change of Image then
// switches as soon as the new slot is Ready). With ActiveImage set to
// another version:
//   - previewed (Switched false): ActiveImage's slot serves through the
//     main Service, untouched; Image's slot runs beside it at Replicas,
//     behind the Service <Name>-preview (Args.PreviewService) for analysis.
//   - switched (Switched true): the main Service selects Image's slot (the
//     switch, once the new slot is Ready); ActiveImage's slot keeps running
//     as it was, so switching back is a selector change that starts no pod.
//
// Scaling the old version down is the promotion (Args.Promoted: ActiveImage
// becomes Image), which deletes the old slot; an abort (Args.Aborted: Image
// becomes ActiveImage) deletes the new slot and the preview Service and
// leaves the old one as it was.
type BlueGreenArgs struct {
	// ActiveImage is the version the main Service serves before the switch
	// (default Image: no preview).
	ActiveImage string
	// Switched points the main Service at Image's slot while ActiveImage's
	// slot keeps running.
	Switched bool
}

// PreviewService is the name of the Service in front of a blue/green
// preview (the new version before and after the switch): analysis and HTTP
// checks reach the preview through it.
func (a Args) PreviewService() string { return a.Name + "-preview" }

// previewing reports whether a blue/green workload runs a new version
// beside the active one.
func (a Args) previewing() bool {
	return a.Strategy == BlueGreen && a.BlueGreen.ActiveImage != "" && a.BlueGreen.ActiveImage != a.Image
}

// Args configures a Workload. Only Namespace, Name and Image are required;
// every other zero value is a secure default.
type Args struct {
	Namespace pulumi.StringInput
	Name      string
	Image     string
	// Replicas is the desired replica count (default 2). With the HPA on (the
	// default) it is the HPA's minReplicas and the Deployment's size when it
	// is created; from then on the HPA owns the Deployment's spec.replicas
	// (see New).
	Replicas int
	// Port is the container port and Service target port (default 8080).
	Port int
	// Env is set on the container.
	Env map[string]string
	// EnvFromConfigMap names a ConfigMap whose keys become environment variables.
	EnvFromConfigMap pulumi.StringInput
	// EnvFromSecret names a Secret whose keys become environment variables
	// (after EnvFromConfigMap, so a secret wins over a setting of the same key).
	EnvFromSecret pulumi.StringInput
	// CPURequest, MemoryRequest, CPULimit, MemoryLimit (default 100m, 128Mi, 500m, 256Mi).
	CPURequest, MemoryRequest, CPULimit, MemoryLimit string
	// ReadinessPath and LivenessPath are HTTP probe paths (default "/").
	ReadinessPath, LivenessPath string
	// RunAsUser is the non-root UID (default 10001).
	RunAsUser int
	// MaxReplicas enables the HPA's upper bound (default 3 × Replicas).
	MaxReplicas int
	// TargetCPU is the HPA's average CPU utilisation target in percent (default 70).
	TargetCPU int
	// DisableHPA and DisablePDB turn those objects off.
	DisableHPA, DisablePDB bool
	// Strategy is the rollout strategy (default Rolling).
	Strategy Strategy
	// MaxSurge and MaxUnavailable tune rolling updates (default "25%" and "0").
	MaxSurge, MaxUnavailable string
	// Canary configures the canary strategy.
	Canary CanaryArgs
	// BlueGreen is the blue/green strategy's phase.
	BlueGreen BlueGreenArgs
	// ReadyTimeout bounds how long the engine waits for a Deployment to become
	// Ready (default 5 minutes).
	ReadyTimeout time.Duration
	// PodLabels are added to every pod.
	PodLabels map[string]string
	// CanaryPodLabels are added to canary pods only.
	CanaryPodLabels map[string]string
}

// Workload is the component.
type Workload struct {
	pulumi.ResourceState

	// Service is the Service name.
	Service pulumi.StringOutput
	// ActiveSlot is the Deployment the Service sends traffic to (blue/green),
	// or the stable Deployment.
	ActiveSlot pulumi.StringOutput
	// Route is the HTTPRoute's name (canary with Canary.Route), else empty.
	Route pulumi.StringOutput
	// Preview is the preview Service's name while a blue/green preview runs
	// (see BlueGreenArgs), else empty.
	Preview pulumi.StringOutput
	// Deployments are the names of the Deployments now in the program.
	Deployments pulumi.StringArrayOutput
}

var (
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	imageRE  = regexp.MustCompile(`^[a-z0-9]+([._/:-][a-z0-9]+)*(:[\w][\w.-]{0,127})?(@sha256:[a-f0-9]{64})?$`)
	pctOrInt = regexp.MustCompile(`^(\d+%?)$`)
	// hostnameRE is a Gateway API Hostname: a DNS name, a leading "*." allowed.
	hostnameRE = regexp.MustCompile(`^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

func (a Args) withDefaults() Args {
	if a.Replicas == 0 {
		a.Replicas = 2
	}
	if a.Port == 0 {
		a.Port = 8080
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&a.CPURequest, "100m")
	def(&a.MemoryRequest, "128Mi")
	def(&a.CPULimit, "500m")
	def(&a.MemoryLimit, "256Mi")
	def(&a.ReadinessPath, "/")
	def(&a.LivenessPath, "/")
	def(&a.MaxSurge, "25%")
	def(&a.MaxUnavailable, "0")
	if a.RunAsUser == 0 {
		a.RunAsUser = 10001
	}
	if a.MaxReplicas == 0 {
		a.MaxReplicas = 3 * a.Replicas
	}
	if a.TargetCPU == 0 {
		a.TargetCPU = 70
	}
	if a.Strategy == "" {
		a.Strategy = Rolling
	}
	if a.Canary.Weight == 0 {
		a.Canary.Weight = 20
	}
	if a.Canary.StableImage == "" {
		a.Canary.StableImage = a.Image
	}
	if a.ReadyTimeout == 0 {
		a.ReadyTimeout = 5 * time.Minute
	}
	return a
}

// Validate reports every invalid field, naming it and the fix.
func (a Args) Validate() error {
	a = a.withDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("workload: Args.%s: "+format, append([]any{field}, args...)...))
	}
	if a.Namespace == nil {
		bad("Namespace", "is nil; pass the environment namespace (e.g. baseline.Namespace)")
	}
	if !dnsLabel.MatchString(a.Name) || len(a.Name) > 40 {
		bad("Name", "%q must be a lower-case DNS label of at most 40 characters", a.Name)
	}
	checkImage := func(field, img string) {
		switch {
		case img == "":
			bad(field, "is empty; set an image with a pinned tag such as \"nginx:1.27\"")
		case !imageRE.MatchString(img):
			bad(field, "%q is not an image reference", img)
		case imageTag(img) == "" || imageTag(img) == "latest":
			bad(field, "%q has no pinned tag; use an explicit version, not :latest", img)
		}
	}
	checkImage("Image", a.Image)
	if a.Strategy == Canary && a.Canary.StableImage != a.Image {
		checkImage("Canary.StableImage", a.Canary.StableImage)
	}
	bg := a.BlueGreen
	if a.Strategy != BlueGreen && (bg.ActiveImage != "" || bg.Switched) {
		bad("BlueGreen", "is set but Strategy is %q; a blue/green phase needs Strategy bluegreen", a.Strategy)
	}
	if a.Strategy == BlueGreen && bg.ActiveImage != "" && bg.ActiveImage != a.Image {
		checkImage("BlueGreen.ActiveImage", bg.ActiveImage)
	}
	if a.Strategy == BlueGreen && bg.Switched && !a.previewing() {
		bad("BlueGreen.Switched", "is set but no preview runs (BlueGreen.ActiveImage is empty or equals Image); set ActiveImage to the version serving today")
	}
	if a.Replicas < 1 || a.Replicas > 1000 {
		bad("Replicas", "%d is out of range; use 1 to 1000", a.Replicas)
	}
	if a.Port < 1 || a.Port > 65535 {
		bad("Port", "%d is not a port; use 1-65535", a.Port)
	}
	if a.RunAsUser < 1 {
		bad("RunAsUser", "%d would run as root; use a UID of 1 or more", a.RunAsUser)
	}
	if a.MaxReplicas < a.Replicas {
		bad("MaxReplicas", "%d is below Replicas %d; raise it", a.MaxReplicas, a.Replicas)
	}
	if a.TargetCPU < 1 || a.TargetCPU > 100 {
		bad("TargetCPU", "%d%% is out of range; use 1-100", a.TargetCPU)
	}
	switch a.Strategy {
	case Rolling, BlueGreen, Canary:
	default:
		bad("Strategy", "%q is not a strategy; use rolling, bluegreen or canary", a.Strategy)
	}
	switch {
	case a.Canary.Route == nil && (a.Canary.Weight < 1 || a.Canary.Weight > 99):
		bad("Canary.Weight", "%d%% is out of range; use 1-99 (100 needs Canary.Route: by the pod ratio stable always serves)", a.Canary.Weight)
	case a.Canary.Route != nil && (a.Canary.Weight < 1 || a.Canary.Weight > 100):
		bad("Canary.Weight", "%d%% is out of range; use 1-100", a.Canary.Weight)
	}
	if r := a.Canary.Route; r != nil {
		if a.Strategy != Canary {
			bad("Canary.Route", "is set but Strategy is %q; routes split a canary's traffic, use Strategy canary", a.Strategy)
		}
		if !dnsLabel.MatchString(r.Gateway) {
			bad("Canary.Route.Gateway", "%q must be the name of a Gateway (a lower-case DNS label)", r.Gateway)
		}
		if r.GatewayNamespace != "" && !dnsLabel.MatchString(r.GatewayNamespace) {
			bad("Canary.Route.GatewayNamespace", "%q must be a namespace name (a lower-case DNS label), or empty for the workload's", r.GatewayNamespace)
		}
		for i, h := range r.Hostnames {
			if !hostnameRE.MatchString(h) {
				bad(fmt.Sprintf("Canary.Route.Hostnames[%d]", i), "%q is not a host name; use e.g. \"shop.example.com\" or \"*.example.com\"", h)
			}
		}
	}
	if !pctOrInt.MatchString(a.MaxSurge) {
		bad("MaxSurge", "%q must be a count or a percentage such as \"25%%\"", a.MaxSurge)
	}
	if !pctOrInt.MatchString(a.MaxUnavailable) {
		bad("MaxUnavailable", "%q must be a count or a percentage such as \"0\"", a.MaxUnavailable)
	}
	if a.MaxSurge == "0" && a.MaxUnavailable == "0" {
		bad("MaxUnavailable", "and MaxSurge are both 0, so a rollout cannot progress; raise one of them")
	}
	for f, q := range map[string]string{"CPURequest": a.CPURequest, "MemoryRequest": a.MemoryRequest, "CPULimit": a.CPULimit, "MemoryLimit": a.MemoryLimit} {
		if _, err := resource.ParseQuantity(q); err != nil {
			bad(f, "%q is not a Kubernetes quantity; use e.g. \"500m\" or \"256Mi\"", q)
		}
	}
	if len(errs) == 0 {
		if r, l := resource.MustParse(a.CPURequest), resource.MustParse(a.CPULimit); r.Cmp(l) > 0 {
			bad("CPURequest", "%s exceeds CPULimit %s; lower the request or raise the limit", a.CPURequest, a.CPULimit)
		}
		if r, l := resource.MustParse(a.MemoryRequest), resource.MustParse(a.MemoryLimit); r.Cmp(l) > 0 {
			bad("MemoryRequest", "%s exceeds MemoryLimit %s; lower the request or raise the limit", a.MemoryRequest, a.MemoryLimit)
		}
	}
	if a.ReadyTimeout < 0 {
		bad("ReadyTimeout", "%s is negative", a.ReadyTimeout)
	}
	slices.SortFunc(errs, func(x, y error) int { return compare(x.Error(), y.Error()) })
	return errors.Join(errs...)
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func imageTag(image string) string {
	for i := len(image) - 1; i >= 0; i-- {
		switch image[i] {
		case '@':
			return "digest"
		case '/':
			return ""
		case ':':
			return image[i+1:]
		}
	}
	return ""
}

// Slot returns the blue/green slot name for an image: the workload name and
// a short hash of the version.
func Slot(name, image string) string {
	h := sha256.Sum256([]byte(image))
	return name + "-" + hex.EncodeToString(h[:])[:8]
}

// New registers the workload. Invalid Args fail before any resource is registered.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*Workload, error) {
	if err := args.Validate(); err != nil {
		return nil, err
	}
	a := args.withDefaults()
	w := &Workload{}
	if err := ctx.RegisterComponentResource(Type, name, w, opts...); err != nil {
		return nil, err
	}
	child := pulumi.Parent(w)
	appLabels := map[string]string{"app.kubernetes.io/name": a.Name}

	// scaled returns the options of the Deployment the HPA scales: with the
	// HPA on, spec.replicas is the size at creation only. The engine ignores
	// later differences (the autoscaler's changes are neither updated back
	// nor reported as drift), and on update the provider sends the live
	// value, or drops the field once the autoscaler owns it, so a
	// force-applied update never resets the autoscaler's replica count.
	scaled := func(opts ...pulumi.ResourceOption) []pulumi.ResourceOption {
		if a.DisableHPA {
			return opts
		}
		return append(opts, pulumi.IgnoreChanges([]string{ScaledField}))
	}
	var deployments []*appsv1.Deployment
	var active *appsv1.Deployment
	selector := maps.Clone(appLabels)
	switch a.Strategy {
	case Rolling:
		d, err := a.deployment(ctx, name, a.Name, a.Image, a.Replicas, map[string]string{"slipway.dev/track": "stable"}, nil, scaled(child)...)
		if err != nil {
			return nil, err
		}
		deployments, active = append(deployments, d), d
	case BlueGreen:
		// Every slot ignores spec.replicas with the HPA on: the one the HPA
		// stops scaling at the switch keeps the pods it had, so switching back
		// starts none.
		images := []string{a.Image}
		if a.previewing() {
			images = []string{a.BlueGreen.ActiveImage, a.Image}
		}
		for _, img := range images {
			slot := Slot(a.Name, img)
			d, err := a.deployment(ctx, name+"-"+slot, slot, img, a.Replicas, map[string]string{"slipway.dev/slot": slot}, nil, scaled(child)...)
			if err != nil {
				return nil, err
			}
			deployments = append(deployments, d)
		}
		active = deployments[0]
		if a.BlueGreen.Switched {
			active = deployments[1]
		}
		selector["slipway.dev/slot"] = Slot(a.Name, images[0])
		if a.BlueGreen.Switched {
			selector["slipway.dev/slot"] = Slot(a.Name, a.Image)
		}
	case Canary:
		stable, err := a.deployment(ctx, name+"-stable", a.Name, a.Canary.StableImage, a.Replicas, map[string]string{"slipway.dev/track": "stable"}, nil, scaled(child)...)
		if err != nil {
			return nil, err
		}
		deployments, active = append(deployments, stable), stable
		if a.Canary.StableImage != a.Image {
			c, err := a.deployment(ctx, name+"-canary", a.Name+"-canary", a.Image, a.canaryReplicas(),
				map[string]string{"slipway.dev/track": "canary"}, a.CanaryPodLabels, child)
			if err != nil {
				return nil, err
			}
			deployments = append(deployments, c)
		}
	}
	deps := make([]pulumi.Resource, len(deployments))
	for i, d := range deployments {
		deps[i] = d
	}
	// The selector switches only after the Deployments are Ready.
	svc, err := a.service(ctx, name, a.Name, appLabels, selector, child, pulumi.DependsOn(deps))
	if err != nil {
		return nil, err
	}
	preview := pulumi.String("").ToStringOutput()
	if a.previewing() {
		sel := maps.Clone(appLabels)
		sel["slipway.dev/slot"] = Slot(a.Name, a.Image)
		p, err := a.service(ctx, name+"-preview", a.PreviewService(), appLabels, sel, child, pulumi.DependsOn(deps))
		if err != nil {
			return nil, err
		}
		preview = p.Metadata.Name().Elem()
	}
	route := pulumi.String("").ToStringOutput()
	if a.Strategy == Canary && a.Canary.Route != nil {
		r, err := a.route(ctx, name, appLabels, child, pulumi.DependsOn(deps))
		if err != nil {
			return nil, err
		}
		route = r
	}
	if !a.DisableHPA {
		if _, err := autoscalingv2.NewHorizontalPodAutoscaler(ctx, name, &autoscalingv2.HorizontalPodAutoscalerArgs{
			Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(a.Name), Namespace: a.Namespace},
			Spec: &autoscalingv2.HorizontalPodAutoscalerSpecArgs{
				ScaleTargetRef: &autoscalingv2.CrossVersionObjectReferenceArgs{
					ApiVersion: pulumi.String("apps/v1"), Kind: pulumi.String("Deployment"), Name: active.Metadata.Name().Elem()},
				MinReplicas: pulumi.Int(a.Replicas),
				MaxReplicas: pulumi.Int(a.MaxReplicas),
				Metrics: autoscalingv2.MetricSpecArray{&autoscalingv2.MetricSpecArgs{
					Type: pulumi.String("Resource"),
					Resource: &autoscalingv2.ResourceMetricSourceArgs{Name: pulumi.String("cpu"),
						Target: &autoscalingv2.MetricTargetArgs{Type: pulumi.String("Utilization"), AverageUtilization: pulumi.Int(a.TargetCPU)}},
				}},
			},
		}, child, pulumi.DependsOn(deps)); err != nil {
			return nil, err
		}
	}
	if !a.DisablePDB {
		pdb := &policyv1.PodDisruptionBudgetSpecArgs{Selector: &metav1.LabelSelectorArgs{MatchLabels: pulumi.ToStringMap(appLabels)}}
		if a.Replicas > 1 {
			pdb.MinAvailable = pulumi.String("50%")
		} else {
			pdb.MaxUnavailable = pulumi.Int(1)
		}
		if _, err := policyv1.NewPodDisruptionBudget(ctx, name, &policyv1.PodDisruptionBudgetArgs{
			Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(a.Name), Namespace: a.Namespace},
			Spec:     pdb,
		}, child); err != nil {
			return nil, err
		}
	}
	var names pulumi.StringArray
	for _, d := range deployments {
		names = append(names, d.Metadata.Name().Elem())
	}
	w.Service = svc.Metadata.Name().Elem()
	w.ActiveSlot = active.Metadata.Name().Elem()
	w.Deployments = names.ToStringArrayOutput()
	w.Route = route
	w.Preview = preview
	if err := ctx.RegisterResourceOutputs(w, pulumi.Map{"service": w.Service, "activeSlot": w.ActiveSlot, "deployments": w.Deployments, "route": w.Route,
		"preview": w.Preview}); err != nil {
		return nil, err
	}
	return w, nil
}

// route registers the canary's traffic split: a Service per track and the
// HTTPRoute that weighs them. It returns the route's name.
func (a Args) route(ctx *pulumi.Context, name string, appLabels map[string]string, opts ...pulumi.ResourceOption) (pulumi.StringOutput, error) {
	r := a.Canary.Route
	for _, track := range []string{"stable", "canary"} {
		sel := maps.Clone(appLabels)
		sel["slipway.dev/track"] = track
		if _, err := corev1.NewService(ctx, name+"-"+track, &corev1.ServiceArgs{
			Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(a.Name + "-" + track), Namespace: a.Namespace, Labels: pulumi.ToStringMap(appLabels),
				Annotations: pulumi.StringMap{"pulumi.com/skipAwait": pulumi.String("true")}},
			Spec: &corev1.ServiceSpecArgs{
				Type:     pulumi.String("ClusterIP"),
				Selector: pulumi.ToStringMap(sel),
				Ports: corev1.ServicePortArray{&corev1.ServicePortArgs{
					Name: pulumi.String("http"), Port: pulumi.Int(80), TargetPort: pulumi.Int(a.Port)}},
			},
		}, opts...); err != nil {
			return pulumi.StringOutput{}, err
		}
	}
	weight := 0
	if a.Canary.StableImage != a.Image {
		weight = a.Canary.Weight
	}
	parent := map[string]any{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": r.Gateway}
	if r.GatewayNamespace != "" {
		parent["namespace"] = r.GatewayNamespace
	}
	backend := func(track string, w int) map[string]any {
		return map[string]any{"group": "", "kind": "Service", "name": a.Name + "-" + track, "port": 80, "weight": w}
	}
	spec := map[string]any{
		"parentRefs": []any{parent},
		"rules": []any{map[string]any{
			"matches":     []any{map[string]any{"path": map[string]any{"type": "PathPrefix", "value": "/"}}},
			"backendRefs": []any{backend("stable", 100-weight), backend("canary", weight)},
		}},
	}
	if len(r.Hostnames) > 0 {
		hosts := make([]any, len(r.Hostnames))
		for i, h := range r.Hostnames {
			hosts[i] = h
		}
		spec["hostnames"] = hosts
	}
	hr, err := apiextensions.NewCustomResource(ctx, name, &apiextensions.CustomResourceArgs{
		ApiVersion:  pulumi.String(RouteAPIVersion),
		Kind:        pulumi.String(RouteKind),
		Metadata:    &metav1.ObjectMetaArgs{Name: pulumi.String(a.Name), Namespace: a.Namespace, Labels: pulumi.ToStringMap(appLabels)},
		OtherFields: kubernetes.UntypedArgs{"spec": spec},
	}, opts...)
	if err != nil {
		return pulumi.StringOutput{}, err
	}
	return hr.Metadata.Name().Elem(), nil
}

// deployment registers one Deployment of the workload.
func (a Args) deployment(ctx *pulumi.Context, resName, name, image string, replicas int, track, extraPodLabels map[string]string,
	opts ...pulumi.ResourceOption) (*appsv1.Deployment, error) {
	labels := map[string]string{"app.kubernetes.io/name": a.Name, "app.kubernetes.io/managed-by": "slipway"}
	maps.Copy(labels, track)
	podLabels := maps.Clone(labels)
	maps.Copy(podLabels, a.PodLabels)
	maps.Copy(podLabels, extraPodLabels)
	matchLabels := map[string]string{"app.kubernetes.io/name": a.Name}
	maps.Copy(matchLabels, track)

	var env corev1.EnvVarArray
	for _, k := range slices.Sorted(maps.Keys(a.Env)) {
		env = append(env, &corev1.EnvVarArgs{Name: pulumi.String(k), Value: pulumi.String(a.Env[k])})
	}
	var envFrom corev1.EnvFromSourceArray
	if a.EnvFromConfigMap != nil {
		envFrom = append(envFrom, &corev1.EnvFromSourceArgs{ConfigMapRef: &corev1.ConfigMapEnvSourceArgs{Name: a.EnvFromConfigMap}})
	}
	if a.EnvFromSecret != nil {
		envFrom = append(envFrom, &corev1.EnvFromSourceArgs{SecretRef: &corev1.SecretEnvSourceArgs{Name: a.EnvFromSecret}})
	}
	probe := func(path string, delay int) *corev1.ProbeArgs {
		return &corev1.ProbeArgs{HttpGet: &corev1.HTTPGetActionArgs{Path: pulumi.String(path), Port: pulumi.Int(a.Port)},
			InitialDelaySeconds: pulumi.Int(delay), PeriodSeconds: pulumi.Int(10), TimeoutSeconds: pulumi.Int(2)}
	}
	timeout := a.ReadyTimeout.String()
	return appsv1.NewDeployment(ctx, resName, &appsv1.DeploymentArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(name), Namespace: a.Namespace, Labels: pulumi.ToStringMap(labels),
			Annotations: pulumi.StringMap{"pulumi.com/timeoutSeconds": pulumi.Sprintf("%d", int(a.ReadyTimeout.Seconds()))}},
		Spec: &appsv1.DeploymentSpecArgs{
			Replicas: pulumi.Int(replicas),
			Selector: &metav1.LabelSelectorArgs{MatchLabels: pulumi.ToStringMap(matchLabels)},
			Strategy: &appsv1.DeploymentStrategyArgs{Type: pulumi.String("RollingUpdate"), RollingUpdate: &appsv1.RollingUpdateDeploymentArgs{
				MaxSurge: intOrString(a.MaxSurge), MaxUnavailable: intOrString(a.MaxUnavailable)}},
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: pulumi.ToStringMap(podLabels)},
				Spec: &corev1.PodSpecArgs{
					AutomountServiceAccountToken: pulumi.Bool(false),
					SecurityContext: &corev1.PodSecurityContextArgs{
						RunAsNonRoot: pulumi.Bool(true), RunAsUser: pulumi.Int(a.RunAsUser), RunAsGroup: pulumi.Int(a.RunAsUser),
						SeccompProfile: &corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
					},
					Containers: corev1.ContainerArray{&corev1.ContainerArgs{
						Name:  pulumi.String(a.Name),
						Image: pulumi.String(image),
						Ports: corev1.ContainerPortArray{&corev1.ContainerPortArgs{Name: pulumi.String("http"), ContainerPort: pulumi.Int(a.Port)}},
						Env:   env, EnvFrom: envFrom,
						Resources: &corev1.ResourceRequirementsArgs{
							Requests: pulumi.StringMap{"cpu": pulumi.String(a.CPURequest), "memory": pulumi.String(a.MemoryRequest)},
							Limits:   pulumi.StringMap{"cpu": pulumi.String(a.CPULimit), "memory": pulumi.String(a.MemoryLimit)},
						},
						ReadinessProbe: probe(a.ReadinessPath, 2),
						LivenessProbe:  probe(a.LivenessPath, 10),
						SecurityContext: &corev1.SecurityContextArgs{
							AllowPrivilegeEscalation: pulumi.Bool(false),
							Privileged:               pulumi.Bool(false),
							ReadOnlyRootFilesystem:   pulumi.Bool(true),
							RunAsNonRoot:             pulumi.Bool(true),
							Capabilities:             &corev1.CapabilitiesArgs{Drop: pulumi.StringArray{pulumi.String("ALL")}},
						},
					}},
				},
			},
		},
	}, append(opts, pulumi.Timeouts(&pulumi.CustomTimeouts{Create: timeout, Update: timeout}))...)
}

func intOrString(s string) pulumi.Input {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil && fmt.Sprint(n) == s {
		return pulumi.Int(n)
	}
	return pulumi.String(s)
}

// CanaryAt returns a's canary step at weight percent: the canary of Image
// beside stable (Canary.StableImage), which is left as it is. A rollout
// (package automation/rollout) applies it for each weight step.
func (a Args) CanaryAt(weight int) Args {
	a.Canary.Weight = weight
	return a
}

// Promoted returns a after the promotion: stable runs Image, no canary
// (for a blue/green workload: Image's slot alone serves, the old one is
// scaled down).
func (a Args) Promoted() Args {
	if a.Strategy == BlueGreen {
		a.BlueGreen = BlueGreenArgs{}
		return a
	}
	a.Canary.StableImage = a.Image
	return a
}

// Aborted returns a after an abort: stable as it was, no canary (for a
// blue/green workload: BlueGreen.ActiveImage's slot alone serves, the
// preview is removed).
func (a Args) Aborted() Args {
	if a.Strategy == BlueGreen {
		if a.BlueGreen.ActiveImage != "" {
			a.Image = a.BlueGreen.ActiveImage
		}
		a.BlueGreen = BlueGreenArgs{}
		return a
	}
	a.Image = a.Canary.StableImage
	return a
}

// BlueGreenAt returns a's blue/green phase: Image previewed beside
// BlueGreen.ActiveImage, which keeps serving (switched false), or the main
// Service switched to Image with the old slot kept (switched true). A
// rollout (package automation/rollout) applies it for the preview and the
// switch.
func (a Args) BlueGreenAt(switched bool) Args {
	a.BlueGreen.Switched = switched
	return a
}

// Apply deploys a workload configured by a. It is typically an engine Up of a
// program that registers New(ctx, name, a); it returns an error when the
// update fails, e.g. because a Deployment never became Ready.
type Apply func(ctx context.Context, a Args) error

// CanaryOutcome reports what ProgressCanary did.
type CanaryOutcome struct {
	// Promoted is true when the canary became Ready and stable now runs its image.
	Promoted bool
	// RolledBack is true when the canary failed and was removed.
	RolledBack bool
	// CanaryErr is the canary step's failure, when it failed.
	CanaryErr error
}

// ProgressCanary moves a canary workload from a.Canary.StableImage to a.Image:
// it deploys the canary beside stable, and only when that update succeeds
// (the canary Deployment became Ready) promotes it; otherwise it rolls back
// by removing the canary, leaving stable untouched. It returns an error only
// when promotion or rollback themselves fail.
func ProgressCanary(ctx context.Context, a Args, apply Apply) (CanaryOutcome, error) {
	if a.Strategy != Canary {
		return CanaryOutcome{}, fmt.Errorf("workload: ProgressCanary needs Args.Strategy %q, got %q", Canary, a.Strategy)
	}
	if err := a.Validate(); err != nil {
		return CanaryOutcome{}, err
	}
	if a.Canary.StableImage == "" || a.Canary.StableImage == a.Image {
		return CanaryOutcome{Promoted: true}, apply(ctx, a)
	}
	if err := apply(ctx, a); err != nil {
		back := a
		back.Image = a.Canary.StableImage
		if rerr := apply(ctx, back); rerr != nil {
			return CanaryOutcome{CanaryErr: err}, fmt.Errorf("workload: canary %s failed (%v) and the rollback failed too: %w", a.Image, err, rerr)
		}
		return CanaryOutcome{RolledBack: true, CanaryErr: err}, nil
	}
	promote := a
	promote.Canary.StableImage = a.Image
	if err := apply(ctx, promote); err != nil {
		return CanaryOutcome{}, fmt.Errorf("workload: promoting canary %s: %w", a.Image, err)
	}
	return CanaryOutcome{Promoted: true}, nil
}

// service is a ClusterIP Service named svcName on port 80 to the
// workload's port of the pods selector matches. The Deployments are
// awaited Ready before it (the caller's DependsOn), so waiting again for
// its endpoints would add only the provider's polling delay: it is skipped.
func (a Args) service(ctx *pulumi.Context, name, svcName string, labels, selector map[string]string, opts ...pulumi.ResourceOption) (*corev1.Service, error) {
	return corev1.NewService(ctx, name, &corev1.ServiceArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(svcName), Namespace: a.Namespace, Labels: pulumi.ToStringMap(labels),
			Annotations: pulumi.StringMap{"pulumi.com/skipAwait": pulumi.String("true")}},
		Spec: &corev1.ServiceSpecArgs{
			Type:     pulumi.String("ClusterIP"),
			Selector: pulumi.ToStringMap(selector),
			Ports: corev1.ServicePortArray{&corev1.ServicePortArgs{
				Name: pulumi.String("http"), Port: pulumi.Int(80), TargetPort: pulumi.Int(a.Port)}},
		},
	}, opts...)
}
