// Package credentials is what a runner reads and writes of a Run's
// credentials: the Secrets its inputs name (checked against the fleet's
// tenancy rules, with every value kept for redaction) and the target
// kubeconfig written for its engine, the Secret's or the runner's own.
package credentials

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipwayhq/slipway/automation/fleet"
	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
)

// Inputs is what a Run's execution reads from Secrets.
type Inputs struct {
	// Passphrase is the backend's passphrase, if the Run names one.
	Passphrase *string
	// Env is the engine's environment from spec.backend.envFromSecret.
	Env map[string]string
	// Kubeconfig is the target kubeconfig from its Secret; nil: the
	// runner's own credentials.
	Kubeconfig []byte
	// Secrets are the program's secret values by name.
	Secrets map[string]string
	// Redact holds every value read, to keep them out of messages.
	Redact []string
}

// Read reads the Run's Secrets with api, an uncached reader (get only),
// and checks them, and the target, against the fleet's tenancy rules
// (allowRunnerCredentials: the namespaces that may use the runner's own
// credentials). A missing Secret or key is an ordinary failure (the
// Secret may be created later), named by its field. Redact is filled even
// when an error is returned.
func Read(ctx context.Context, api client.Reader, run *v1alpha1.Run, allowRunnerCredentials []string) (Inputs, error) {
	var in Inputs
	read := map[string]*corev1.Secret{}
	get := func(name string) (*corev1.Secret, error) {
		if s, ok := read[name]; ok {
			return s, nil
		}
		var s corev1.Secret
		if err := api.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: name}, &s); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("Secret %s/%s does not exist; create it", run.Namespace, name)
			}
			return nil, fmt.Errorf("reading Secret %s/%s: %w", run.Namespace, name, err)
		}
		read[name] = &s
		return &s, nil
	}
	value := func(field string, ref v1alpha1.SecretKeyRef) (string, error) {
		s, err := get(ref.Name)
		if err != nil {
			return "", fmt.Errorf("%s: %w", field, err)
		}
		v, ok := s.Data[ref.Key]
		if !ok {
			return "", fmt.Errorf("%s: Secret %s/%s has no key %q; add it", field, run.Namespace, ref.Name, ref.Key)
		}
		in.Redact = append(in.Redact, string(v))
		return string(v), nil
	}
	spec := run.Spec.Inputs
	if name := spec.Backend.EnvFromSecret; name != "" {
		s, err := get(name)
		if err != nil {
			return in, fmt.Errorf("spec.backend.envFromSecret: %w", err)
		}
		if err := fleet.CheckEnvKeys(name, slices.Collect(maps.Keys(s.Data))); err != nil {
			return in, err
		}
		in.Env = map[string]string{}
		for k, v := range s.Data {
			in.Env[k] = string(v)
			in.Redact = append(in.Redact, string(v))
		}
		if p, ok := in.Env["PULUMI_CONFIG_PASSPHRASE"]; ok {
			in.Passphrase = &p
		}
	}
	if ref := spec.Backend.PassphraseSecretRef; ref != nil {
		p, err := value("spec.backend.passphraseSecretRef", *ref)
		if err != nil {
			return in, err
		}
		in.Passphrase = &p
	}
	if ref := spec.Target.KubeconfigSecretRef; ref != nil {
		kc, err := value("spec.target.kubeconfigSecretRef", *ref)
		if err != nil {
			return in, err
		}
		in.Kubeconfig = []byte(kc)
		in.Redact = append(in.Redact, kubeconfigSecrets(in.Kubeconfig)...)
		if err := fleet.CheckKubeconfig(in.Kubeconfig); err != nil {
			return in, err
		}
	} else if err := fleet.CheckTarget(run.Namespace, spec, allowRunnerCredentials); err != nil {
		return in, err
	}
	for i, s := range spec.Secrets {
		v, err := value(fmt.Sprintf("spec.secrets[%d] (%s)", i, s.Name), s.ValueFrom)
		if err != nil {
			return in, err
		}
		if in.Secrets == nil {
			in.Secrets = map[string]string{}
		}
		in.Secrets[s.Name] = v
	}
	return in, nil
}

// kubeconfigSecrets are the credentials in a kubeconfig, as they could
// appear in an error.
func kubeconfigSecrets(b []byte) []string {
	c, err := clientcmd.Load(b)
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range c.AuthInfos {
		out = append(out, a.Token, a.Password, string(a.ClientKeyData))
	}
	return out
}

// kubeconfigPath is where a Run's target kubeconfig is written: one path
// per environment, the same for every runner with the same WorkDir, since
// the state records it in the Kubernetes provider's configuration (a
// refresh or destroy reads it from there).
func kubeconfigPath(workDir string, run *v1alpha1.Run) string {
	return filepath.Join(workDir, "kubeconfigs", run.Namespace, run.Spec.Environment+".yaml")
}

// WriteKubeconfig writes the target kubeconfig (content, the Secret's;
// nil: the runner's own credentials, from cfg) to the Run's path under
// workDir, readable by this user only, and returns its path and how to
// remove it (a failure to remove is logged on log).
func WriteKubeconfig(cfg *rest.Config, workDir string, run *v1alpha1.Run, content []byte, log *slog.Logger) (string, func(), error) {
	if content == nil {
		var err error
		if content, err = ownKubeconfig(cfg); err != nil {
			return "", nil, err
		}
	}
	path := kubeconfigPath(workDir, run)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", nil, fmt.Errorf("runner: kubeconfig directory: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".kubeconfig-*")
	if err != nil {
		return "", nil, fmt.Errorf("runner: writing the target kubeconfig: %w", err)
	}
	_, werr := tmp.Write(content)
	if err := errors.Join(werr, tmp.Chmod(0o600), tmp.Close()); err != nil {
		_ = os.Remove(tmp.Name())
		return "", nil, fmt.Errorf("runner: writing the target kubeconfig: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return "", nil, fmt.Errorf("runner: writing the target kubeconfig: %w", err)
	}
	return path, func() {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			log.Warn("removing the target kubeconfig failed", "path", path, "error", err)
		}
	}, nil
}

// ownKubeconfig is a kubeconfig for the runner's own cluster credentials
// (files, such as a service account's token, are referenced, so they
// rotate).
func ownKubeconfig(cfg *rest.Config) ([]byte, error) {
	c := clientcmdapi.NewConfig()
	c.Clusters["target"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthority: cfg.CAFile,
		CertificateAuthorityData: cfg.CAData, InsecureSkipTLSVerify: cfg.Insecure, TLSServerName: cfg.ServerName}
	auth := &clientcmdapi.AuthInfo{ClientCertificate: cfg.CertFile, ClientCertificateData: cfg.CertData,
		ClientKey: cfg.KeyFile, ClientKeyData: cfg.KeyData, Username: cfg.Username, Password: cfg.Password,
		Impersonate: cfg.Impersonate.UserName, ImpersonateGroups: cfg.Impersonate.Groups,
		Exec: cfg.ExecProvider, AuthProvider: cfg.AuthProvider}
	if cfg.BearerTokenFile != "" {
		auth.TokenFile = cfg.BearerTokenFile
	} else {
		auth.Token = cfg.BearerToken
	}
	c.AuthInfos["runner"] = auth
	c.Contexts["target"] = &clientcmdapi.Context{Cluster: "target", AuthInfo: "runner"}
	c.CurrentContext = "target"
	b, err := clientcmd.Write(*c)
	if err != nil {
		return nil, fmt.Errorf("runner: writing a kubeconfig for the runner's own credentials: %w", err)
	}
	return b, nil
}
