package main

import (
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/schedulerd/schedulerd/config"
)

// newKubeClient builds a Kubernetes client from the kubeconfig file, or from the pod's
// service account when none is set, with the configured client-side rate limits.
func newKubeClient(cfg config.Config) (kubernetes.Interface, error) {
	restConfig, err := kubeRESTConfig(cfg)
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return nil, fmt.Errorf("create Kubernetes client: %w", err)
	}
	return client, nil
}

func kubeRESTConfig(cfg config.Config) (*rest.Config, error) {
	var restConfig *rest.Config
	var err error
	if cfg.Kubeconfig != "" {
		restConfig, err = clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("load kubeconfig %s (check SCHEDULERD_KUBECONFIG): %w", cfg.Kubeconfig, err)
		}
	} else {
		restConfig, err = rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("no kubeconfig set (SCHEDULERD_KUBECONFIG) and not running in a cluster: %w", err)
		}
	}
	restConfig.QPS = float32(cfg.KubeQPS)
	restConfig.Burst = cfg.KubeBurst
	restConfig.UserAgent = "schedulerd"
	return restConfig, nil
}
