package install

import (
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/slipwayhq/slipway/automation/fleet"
)

// Ports and paths the operator and the runners serve.
const (
	metricsPort = 8080
	healthPort  = 8081
	// workDir is the writable HOME of the containers (an emptyDir): the
	// engine's work directories and state live under it.
	workDir = "/var/lib/slipway"
	// uid is the non-root user the containers run as.
	uid = 65532
)

// operatorDeployment returns the operator's Deployment: o.Operators
// replicas electing a leader with a Lease in o.Namespace.
func operatorDeployment(o Options) *appsv1.Deployment {
	return deployment(o, OperatorName, "operator", int32(o.Operators), watchArgs(o, []string{
		"operator",
		"--leader-election-namespace=" + o.Namespace,
		// The runners' directory: the operator destroys there an
		// Environment whose namespace is being deleted.
		"--dir=/var/lib/slipway",
		"--identity=$(POD_NAME)",
		fmt.Sprintf("--metrics-bind-address=:%d", metricsPort),
		fmt.Sprintf("--health-probe-bind-address=:%d", healthPort),
	}), corev1.ResourceRequirements{
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("100m"),
			corev1.ResourceMemory: resource.MustParse("128Mi"),
		},
		Limits: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("1"),
			corev1.ResourceMemory: resource.MustParse("512Mi"),
		},
	})
}

// runnerDeployment returns the runners' Deployment. A runner's resources
// grow with the number of Runs it executes at once: each runs an engine
// and its plugins.
func runnerDeployment(o Options) *appsv1.Deployment {
	n := int64(o.RunnerConcurrency)
	d := deployment(o, RunnerName, "runner", int32(o.Runners), watchArgs(o, []string{
		"runner",
		"--concurrency=" + strconv.Itoa(o.RunnerConcurrency),
		"--dir=/var/lib/slipway",
		"--identity=$(POD_NAME)",
		fmt.Sprintf("--metrics-bind-address=:%d", metricsPort),
		fmt.Sprintf("--health-probe-bind-address=:%d", healthPort),
	}), corev1.ResourceRequirements{
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewMilliQuantity(250*n, resource.DecimalSI),
			corev1.ResourceMemory: *resource.NewQuantity(512<<20*n, resource.BinarySI),
		},
		Limits: corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewQuantity(n, resource.DecimalSI),
			corev1.ResourceMemory: *resource.NewQuantity(1536<<20*n, resource.BinarySI),
		},
	})
	// A stopping runner finishes or hands back its Runs; give it time.
	d.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](120)
	return d
}

// watchArgs appends the namespaced mode's --watch-namespaces flag, last
// (the kustomize overlay appends it there too).
func watchArgs(o Options, args []string) []string {
	if len(o.WatchNamespaces) == 0 {
		return args
	}
	return append(args, watchFlag(o))
}

// watchFlag is the flag giving the operator and the runners the namespaces
// they serve.
func watchFlag(o Options) string {
	return "--watch-namespaces=" + fleet.Namespaces(o.WatchNamespaces).String()
}

// deployment returns a hardened Deployment running `slipway <args>` as the
// ServiceAccount name.
func deployment(o Options, name, component string, replicas int32, args []string, res corev1.ResourceRequirements) *appsv1.Deployment {
	selector := map[string]string{
		"app.kubernetes.io/name":      "slipway",
		"app.kubernetes.io/component": component,
	}
	labels := map[string]string{"app.kubernetes.io/part-of": partOf}
	for k, v := range selector {
		labels[k] = v
	}
	probe := func(path string, period int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: path, Port: intstr.FromString("health"),
			}},
			PeriodSeconds:    period,
			FailureThreshold: 3,
		}
	}
	fieldEnv := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: path},
		}}
	}
	emptyDir := func(name string) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	}
	container := corev1.Container{
		Name:            component,
		Image:           o.Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         []string{"slipway"},
		Args:            args,
		Ports: []corev1.ContainerPort{
			{Name: "metrics", ContainerPort: metricsPort, Protocol: corev1.ProtocolTCP},
			{Name: "health", ContainerPort: healthPort, Protocol: corev1.ProtocolTCP},
		},
		Env: []corev1.EnvVar{
			fieldEnv("POD_NAME", "metadata.name"),
			fieldEnv("POD_NAMESPACE", "metadata.namespace"),
			fieldEnv("NODE_NAME", "spec.nodeName"),
			{Name: "HOME", Value: workDir},
			{Name: "TMPDIR", Value: "/tmp"},
		},
		Resources:      res,
		LivenessProbe:  probe("/healthz", 20),
		ReadinessProbe: probe("/readyz", 10),
		VolumeMounts: []corev1.VolumeMount{
			{Name: "tmp", MountPath: "/tmp"},
			{Name: "work", MountPath: workDir},
		},
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             ptr.To(true),
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: o.Namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: name,
					Containers:         []corev1.Container{container},
					Volumes:            []corev1.Volume{emptyDir("tmp"), emptyDir("work")},
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To[int64](uid),
						RunAsGroup:     ptr.To[int64](uid),
						FSGroup:        ptr.To[int64](uid),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					// Spread the replicas over nodes, so one node going
					// away leaves a leader or a runner.
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
						PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
							Weight: 100,
							PodAffinityTerm: corev1.PodAffinityTerm{
								LabelSelector: &metav1.LabelSelector{MatchLabels: selector},
								TopologyKey:   corev1.LabelHostname,
							},
						}},
					}},
				},
			},
		},
	}
}
