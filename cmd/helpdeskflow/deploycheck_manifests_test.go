package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v4"

	"github.com/helpdeskflow/helpdeskflow"
)

// The checks of docker-compose.yml and deploy/kubernetes (see
// deploycheck_test.go).

type composeFile struct {
	Services map[string]struct {
		Image       string         `yaml:"image"`
		Build       any            `yaml:"build"`
		Command     []string       `yaml:"command"`
		Entrypoint  []string       `yaml:"entrypoint"`
		Environment map[string]any `yaml:"environment"`
		Ports       []string       `yaml:"ports"`
		Volumes     []string       `yaml:"volumes"`
		Healthcheck *struct {
			Test    []string `yaml:"test"`
			Disable bool     `yaml:"disable"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
}

// checkCompose checks the services that run the image (every role once,
// each invocation, the HEALTHCHECK's path on each), the broker's largest
// message and the topic script's mount.
func (c *checker) checkCompose(files deployFiles, img dockerImage) {
	var f composeFile
	if err := yaml.Unmarshal(files[composePath], &f); err != nil {
		c.problemf("%s: %v", composePath, err)
		return
	}
	var appImage string
	for _, s := range f.Services {
		if s.Build != nil {
			appImage = s.Image
		}
	}
	if appImage == "" {
		c.problemf("%s: no service builds the image", composePath)
	}
	roles := map[string]bool{}
	for name, s := range f.Services {
		where := composePath + " " + name
		switch {
		case s.Image == appImage:
			ct := container{where: where, args: s.Command, env: map[string]string{}, ports: map[string]int{}}
			if len(ct.args) == 0 {
				ct.args = img.cmd
			}
			for k, v := range img.env {
				ct.env[k] = v
			}
			for k, v := range s.Environment {
				ct.env[k] = fmt.Sprint(v)
			}
			if len(s.Entrypoint) > 0 {
				c.problemf("%s: replaces the image's ENTRYPOINT", where)
			}
			c.checkInvocation(ct)
			command, r := ct.invocation()
			if command != "serve" {
				continue
			}
			roles[r] = true
			if s.Healthcheck == nil {
				c.healthcheckProbe(ct, where)
			}
			for _, p := range s.Ports {
				published := strings.Split(p, ":")
				n, err := strconv.Atoi(published[len(published)-1])
				if l, _ := ct.listenerOf(n); err != nil || l != httpListener {
					c.problemf("%s: publishes %s, not HDF_HTTP_ADDR's port", where, p)
				}
			}
		case strings.HasPrefix(s.Image, "apache/kafka"):
			if v, ok := s.Environment["KAFKA_MESSAGE_MAX_BYTES"]; ok {
				if n, _ := strconv.Atoi(fmt.Sprint(v)); n < helpdeskflow.MaxRecordBytes {
					c.problemf("%s: KAFKA_MESSAGE_MAX_BYTES %v is below the producers' record batches (helpdeskflow.MaxRecordBytes %d)", where, v, helpdeskflow.MaxRecordBytes)
				}
			}
		}
	}
	for role := range knownRoles {
		if !roles[role] {
			c.problemf("%s: no service runs `serve --roles %s` from the image", composePath, role)
		}
	}
	mounted := false
	for _, s := range f.Services {
		for _, v := range s.Volumes {
			if strings.HasPrefix(v, "./"+kafkaTopicsScript+":") && slices.ContainsFunc(s.Entrypoint, func(a string) bool { return strings.HasSuffix(a, "/kafka-topics.sh") }) {
				mounted = true
			}
		}
	}
	if !mounted {
		c.problemf("%s: no service runs %s", composePath, kafkaTopicsScript)
	}
}

// k8sObject is the part of a Kubernetes object the checks read.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec struct {
				Containers []k8sContainer `yaml:"containers"`
				Volumes    []struct {
					ConfigMap struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
	// kustomization.yaml
	Resources          []string `yaml:"resources"`
	ConfigMapGenerator []struct {
		Name  string   `yaml:"name"`
		Files []string `yaml:"files"`
	} `yaml:"configMapGenerator"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
	} `yaml:"resources"`
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
}

// checkKubernetes checks every manifest: each parses, the kustomization
// lists them all, a Deployment per role with probes and resource requests,
// the containers' invocations, every probe's and scrape annotation's path
// and port, the migrate Job, the API's PodDisruptionBudget, the topic Job.
func (c *checker) checkKubernetes(files deployFiles, img dockerImage) {
	var objects []k8sObject
	var kustomization k8sObject
	var manifests []string
	for path, src := range files {
		if !strings.HasPrefix(path, kubernetesDir+"/") || !strings.HasSuffix(path, ".yaml") {
			continue
		}
		dec := yaml.NewDecoder(bytes.NewReader(src))
		for {
			var o k8sObject
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				c.problemf("%s: %v", path, err)
				break
			}
			if strings.HasSuffix(path, "/kustomization.yaml") {
				kustomization = o
				continue
			}
			if o.Kind == "" || o.Metadata.Name == "" {
				c.problemf("%s: an object without kind or name", path)
			}
			objects = append(objects, o)
		}
		if !strings.HasSuffix(path, "/kustomization.yaml") {
			manifests = append(manifests, strings.TrimPrefix(path, kubernetesDir+"/"))
		}
	}
	slices.Sort(manifests)
	if listed := slices.Sorted(slices.Values(kustomization.Resources)); !slices.Equal(listed, manifests) {
		c.problemf("%s/kustomization.yaml: resources %q, want every manifest of the folder %q", kubernetesDir, listed, manifests)
	}
	generated := map[string]bool{}
	for _, g := range kustomization.ConfigMapGenerator {
		generated[g.Name] = true
		for _, f := range g.Files {
			if files[kubernetesDir+"/"+f] == nil {
				c.problemf("%s/kustomization.yaml: configMapGenerator %s: no file %s", kubernetesDir, g.Name, f)
			}
		}
	}
	envOf := map[string]map[string]string{} // "ConfigMap/name", "Secret/name" → its keys
	for _, o := range objects {
		if o.Kind == "ConfigMap" || o.Kind == "Secret" {
			data := map[string]string{}
			maps.Copy(data, o.Data)
			maps.Copy(data, o.StringData) // a Secret's data is base64: only its keys count
			envOf[o.Kind+"/"+o.Metadata.Name] = data
		}
	}

	deployments := map[string][]string{} // role → Deployments
	var migrates int
	var apiLabels map[string]string
	topicsJob := false
	for _, o := range objects {
		where := kubernetesDir + " " + o.Kind + "/" + o.Metadata.Name
		for _, v := range o.Spec.Template.Spec.Volumes {
			if generated[v.ConfigMap.Name] && o.Kind == "Job" {
				topicsJob = true
			}
		}
		for _, kc := range o.Spec.Template.Spec.Containers {
			if name, _, _ := strings.Cut(kc.Image, ":"); name != "helpdeskflow" && !strings.HasSuffix(name, "/helpdeskflow") {
				continue
			}
			ct := c.k8sContainer(where+" "+kc.Name, kc, img, envOf)
			command, roles := ct.invocation()
			switch {
			case o.Kind == "Job" && command == "migrate":
				migrates++
				continue
			case o.Kind != "Deployment" || command != "serve":
				c.problemf("%s: runs `%s` as a %s", ct.where, command, o.Kind)
				continue
			}
			deployments[roles] = append(deployments[roles], o.Metadata.Name)
			if roles == "api" {
				apiLabels = o.Spec.Template.Metadata.Labels
			}
			for _, p := range []struct {
				name  string
				probe *k8sProbe
			}{{"readinessProbe", kc.ReadinessProbe}, {"livenessProbe", kc.LivenessProbe}, {"startupProbe", kc.StartupProbe}} {
				switch {
				case p.probe != nil && p.probe.HTTPGet != nil:
					c.probe(ct, ct.where+" "+p.name, p.probe.HTTPGet.Port, p.probe.HTTPGet.Path)
				case p.name != "startupProbe":
					c.problemf("%s: no %s (httpGet)", ct.where, p.name)
				}
			}
			if kc.Resources.Requests["memory"] == "" || kc.Resources.Requests["cpu"] == "" {
				c.problemf("%s: no cpu and memory requests", ct.where)
			}
			annotations := o.Spec.Template.Metadata.Annotations
			if annotations["prometheus.io/scrape"] != "true" {
				c.problemf("%s: no prometheus.io/scrape annotation", where)
			} else if port, err := strconv.Atoi(annotations["prometheus.io/port"]); err != nil {
				c.problemf("%s: prometheus.io/port %q is not a number", where, annotations["prometheus.io/port"])
			} else {
				c.probe(ct, where+" prometheus.io annotations", port, annotations["prometheus.io/path"])
			}
		}
	}
	for role := range knownRoles {
		if len(deployments[role]) != 1 {
			c.problemf("%s: Deployments running `serve --roles %s`: %q, want one", kubernetesDir, role, deployments[role])
		}
	}
	if migrates != 1 {
		c.problemf("%s: %d Jobs run `helpdeskflow migrate`, want one", kubernetesDir, migrates)
	}
	if !topicsJob {
		c.problemf("%s: no Job mounts %s from the kustomization's configMapGenerator", kubernetesDir, filepath.Base(kafkaTopicsScript))
	}
	pdb := false
	for _, o := range objects {
		if o.Kind == "PodDisruptionBudget" && len(o.Spec.Selector.MatchLabels) > 0 && labelsMatch(o.Spec.Selector.MatchLabels, apiLabels) {
			pdb = true
		}
	}
	if !pdb {
		c.problemf("%s: no PodDisruptionBudget selects the API's pods (labels %v)", kubernetesDir, apiLabels)
	}
}

// k8sContainer is kc as it runs: args after the image's ENTRYPOINT (or
// its CMD), the image's ENV overlaid with envFrom's ConfigMaps and Secrets
// and env.
func (c *checker) k8sContainer(where string, kc k8sContainer, img dockerImage, envOf map[string]map[string]string) container {
	ct := container{where: where, args: kc.Args, env: map[string]string{}, ports: map[string]int{}}
	if len(kc.Command) > 0 {
		c.problemf("%s: replaces the image's ENTRYPOINT with command %q", where, kc.Command)
	}
	if len(ct.args) == 0 {
		ct.args = img.cmd
	}
	for k, v := range img.env {
		ct.env[k] = v
	}
	for _, ef := range kc.EnvFrom {
		var ref string
		switch {
		case ef.ConfigMapRef != nil:
			ref = "ConfigMap/" + ef.ConfigMapRef.Name
		case ef.SecretRef != nil:
			ref = "Secret/" + ef.SecretRef.Name
		}
		data, ok := envOf[ref]
		if !ok {
			c.problemf("%s: envFrom %s, which no manifest defines", where, ref)
		}
		for k, v := range data {
			ct.env[k] = v
		}
	}
	for _, e := range kc.Env {
		ct.env[e.Name] = e.Value
	}
	for _, p := range kc.Ports {
		ct.ports[p.Name] = p.ContainerPort
	}
	c.checkInvocation(ct)
	return ct
}

func labelsMatch(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}
