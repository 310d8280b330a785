package toolchain

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/slipwayhq/slipway/automation/toolchain/internal/gobuild"
)

// installProvider installs the provider built in dir into pulumiHome's
// plugin cache (empty: DefaultPulumiHome).
func installProvider(dir, pulumiHome string) (string, error) {
	var err error
	if pulumiHome == "" {
		pulumiHome, err = DefaultPulumiHome()
		if err != nil {
			return "", err
		}
	}
	return installPlugin(filepath.Join(dir, "bin", "pulumi-resource-kubernetes"),
		filepath.Join(pulumiHome, "plugins"), "resource", "kubernetes", KubernetesProviderVersion)
}

// InstallPlugin places bin in the engine's plugin cache under pulumiHome as
// the plugin <kind> <name> v<version> (hard-linked when possible), so the
// engine finds it and never downloads one. It returns the installed path.
func InstallPlugin(bin, pulumiHome, kind, name, version string) (string, error) {
	return installPlugin(bin, filepath.Join(pulumiHome, "plugins"), kind, name, version)
}

// PluginPath returns where the engine looks for the plugin <kind> <name>
// v<version> under pulumiHome.
func PluginPath(pulumiHome, kind, name, version string) string {
	return filepath.Join(pulumiHome, "plugins", fmt.Sprintf("%s-%s-v%s", kind, name, version), "pulumi-"+kind+"-"+name)
}

// installPlugin places bin in the engine's plugin cache as <kind>-<name>-v<version>,
// hard-linked when possible and copied otherwise, replacing any other binary
// there. The directory is renamed into place so the engine never sees half of it.
func installPlugin(bin, pluginsDir, kind, name, version string) (string, error) {
	dir := filepath.Join(pluginsDir, fmt.Sprintf("%s-%s-v%s", kind, name, version))
	exe := filepath.Join(dir, "pulumi-"+kind+"-"+name)
	src, err := os.Stat(bin)
	if err != nil {
		return "", fmt.Errorf("toolchain: plugin binary: %w", err)
	}
	if cur, err := os.Stat(exe); err == nil && os.SameFile(cur, src) {
		if _, err := os.Stat(dir + ".partial"); err != nil {
			return exe, nil
		}
	}
	if err := os.MkdirAll(pluginsDir, 0o755); err != nil {
		return "", fmt.Errorf("toolchain: plugin cache %s: %w", pluginsDir, err)
	}
	tmp, err := os.MkdirTemp(pluginsDir, ".slipway-install-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	tmpExe := filepath.Join(tmp, filepath.Base(exe))
	if err := os.Link(bin, tmpExe); err != nil {
		if err := gobuild.CopyFile(bin, tmpExe, 0o755); err != nil {
			return "", fmt.Errorf("toolchain: installing plugin: %w", err)
		}
	}
	old := dir + fmt.Sprintf(".old-%d", os.Getpid())
	_ = os.Rename(dir, old)
	if err := os.Rename(tmp, dir); err != nil {
		// Another process may have installed it at the same moment.
		if cur, e := os.Stat(exe); e == nil && os.SameFile(cur, src) {
			_ = os.RemoveAll(old)
			return exe, nil
		}
		return "", fmt.Errorf("toolchain: installing plugin into %s: %w", dir, err)
	}
	_ = os.RemoveAll(old)
	_ = os.Remove(dir + ".partial")
	return exe, nil
}
