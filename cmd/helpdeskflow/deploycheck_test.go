package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v4"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/kafka"
)

// The checks of the files that deploy the binary (Dockerfile,
// docker-compose.yml, deploy/kubernetes) against what the binary itself
// says it knows: its commands (`helpdeskflow help`), each command's flags
// and their HDF_* variables (`helpdeskflow <command> -h`), and the paths
// each role serves on each port (asked of running roles). Each check adds a
// problem; image_test.go runs them on the files as they are and on
// misspelt copies.

// deployFiles are the files checked, by path from the repository root.
type deployFiles map[string][]byte

const (
	dockerfilePath    = "Dockerfile"
	composePath       = "docker-compose.yml"
	kubernetesDir     = "deploy/kubernetes"
	kafkaTopicsScript = "deploy/kubernetes/kafka-topics.sh"
)

// readDeployFiles reads the Dockerfile, the compose file and every file of
// deploy/kubernetes under root.
func readDeployFiles(root string) (deployFiles, error) {
	files := deployFiles{}
	paths := []string{dockerfilePath, composePath, "go.mod"}
	entries, err := os.ReadDir(filepath.Join(root, kubernetesDir))
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		paths = append(paths, kubernetesDir+"/"+e.Name())
	}
	for _, p := range paths {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			return nil, err
		}
		files[p] = b
	}
	return files, nil
}

// binaryFacts is what the binary says it knows.
type binaryFacts struct {
	bin      string
	commands map[string]bool
	flags    map[string]map[string]bool // by command
	env      map[string]map[string]bool // HDF_* variables, by command
}

// newBinaryFacts asks bin for its commands.
func newBinaryFacts(bin string) (*binaryFacts, error) {
	out, err := exec.Command(bin, "help").Output()
	if err != nil {
		return nil, fmt.Errorf("%s help: %w", bin, err)
	}
	f := &binaryFacts{bin: bin, commands: map[string]bool{}, flags: map[string]map[string]bool{}, env: map[string]map[string]bool{}}
	for _, m := range regexp.MustCompile(`(?m)^  ([a-z][a-z-]*)`).FindAllStringSubmatch(string(out), -1) {
		f.commands[m[1]] = true
	}
	if !f.commands["serve"] || !f.commands["healthcheck"] {
		return nil, fmt.Errorf("%s help lists no serve or healthcheck command:\n%s", bin, out)
	}
	return f, nil
}

// commandFlags returns the flags and HDF_* variables of command, as its -h
// prints them (remembered).
func (f *binaryFacts) commandFlags(command string) (flags, env map[string]bool) {
	if f.flags[command] == nil {
		var stderr bytes.Buffer
		cmd := exec.Command(f.bin, command, "-h")
		cmd.Stderr = &stderr
		cmd.Run() //nolint:errcheck // -h exits 1 after printing the flags
		f.flags[command], f.env[command] = map[string]bool{}, map[string]bool{}
		for _, m := range regexp.MustCompile(`(?m)^  -([a-zA-Z0-9-]+)`).FindAllStringSubmatch(stderr.String(), -1) {
			f.flags[command][m[1]] = true
		}
		for _, m := range regexp.MustCompile(`\(env (HDF_[A-Z0-9_]+)\)`).FindAllStringSubmatch(stderr.String(), -1) {
			f.env[command][m[1]] = true
		}
	}
	return f.flags[command], f.env[command]
}

// listener is one of the ports a role serves on.
type listener string

const (
	httpListener    listener = "HDF_HTTP_ADDR"
	metricsListener listener = "HDF_METRICS_ADDR"
)

// pathProbe is a request a file makes of a role: a probe, a HEALTHCHECK, a
// scrape: GET path on listener l of `serve --roles <roles>`, whose
// /metrics is on a port of its own when separateMetrics is set.
type pathProbe struct {
	where, roles, path string
	l                  listener
	separateMetrics    bool
}

// servedFunc reports the status a running process answers p with.
type servedFunc func(p pathProbe) (int, error)

// container is one container of the image, as a file runs it: its command
// line after the entrypoint, its environment, and where it came from.
type container struct {
	where string
	args  []string
	env   map[string]string
	// ports maps a port's name (Kubernetes) and number to the number.
	ports map[string]int
}

// invocation returns the command and the roles it runs (serve's --roles,
// else HDF_ROLES, else the flag's default).
func (c container) invocation() (command, roles string) {
	for i, a := range c.args {
		if !strings.HasPrefix(a, "-") && command == "" {
			command = a
		}
		if name, value, ok := strings.Cut(strings.TrimLeft(a, "-"), "="); strings.HasPrefix(a, "-") && name == "roles" {
			if ok {
				roles = value
			} else if i+1 < len(c.args) {
				roles = c.args[i+1]
			}
		}
	}
	if roles == "" {
		roles = c.env["HDF_ROLES"]
	}
	if roles == "" {
		for _, s := range (&config{}).settings() {
			if s.flag == "roles" {
				roles = s.def
			}
		}
	}
	return command, roles
}

// listenerOf returns the listener whose address (in c's environment) has
// port.
func (c container) listenerOf(port int) (listener, bool) {
	for _, l := range []listener{httpListener, metricsListener} {
		if p, err := addrPort(c.env[string(l)]); err == nil && p == port {
			return l, true
		}
	}
	return "", false
}

func addrPort(addr string) (int, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(port)
}

// checker collects the problems of a set of files.
type checker struct {
	facts    *binaryFacts
	served   servedFunc
	problems []string
	probes   []pathProbe
}

func (c *checker) problemf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// checkDeployFiles returns every problem of files.
func checkDeployFiles(files deployFiles, facts *binaryFacts, served servedFunc) []string {
	c := &checker{facts: facts, served: served}
	image := c.checkDockerfile(files)
	c.checkCompose(files, image)
	c.checkKubernetes(files, image)
	c.checkKafkaTopics(files)
	for _, p := range c.probes {
		status, err := served(p)
		if err != nil || status != 200 {
			c.problemf("%s: GET %s on %s of `serve --roles %s` answers %d %v, want 200", p.where, p.path, p.l, p.roles, status, err)
		}
	}
	return c.problems
}

// checkInvocation checks a container's command line and HDF_* variables.
func (c *checker) checkInvocation(ct container) {
	command, roles := ct.invocation()
	if !c.facts.commands[command] {
		c.problemf("%s: runs %q, which is not a helpdeskflow command (args %q)", ct.where, command, ct.args)
		return
	}
	flags, env := c.facts.commandFlags(command)
	for _, a := range ct.args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !flags[name] {
			c.problemf("%s: `helpdeskflow %s` has no flag %s", ct.where, command, a)
		}
	}
	for name := range ct.env {
		if strings.HasPrefix(name, "HDF_") && !env[name] {
			c.problemf("%s: `helpdeskflow %s` reads no variable %s", ct.where, command, name)
		}
	}
	if command == "serve" {
		for _, role := range strings.Split(roles, ",") {
			if !knownRoles[strings.TrimSpace(role)] {
				c.problemf("%s: unknown role %q", ct.where, role)
			}
		}
	}
}

// probe records a request of path on port of ct, to be asked of its roles.
func (c *checker) probe(ct container, where string, port any, path string) {
	var number int
	switch p := port.(type) {
	case int:
		number = p
	case string:
		n, ok := ct.ports[p]
		if !ok {
			c.problemf("%s: port %q is not one of the container's ports", where, p)
			return
		}
		number = n
	default:
		c.problemf("%s: port %v is neither a number nor a name", where, port)
		return
	}
	l, ok := ct.listenerOf(number)
	if !ok {
		c.problemf("%s: port %d is neither HDF_HTTP_ADDR's (%q) nor HDF_METRICS_ADDR's (%q)", where, number, ct.env["HDF_HTTP_ADDR"], ct.env["HDF_METRICS_ADDR"])
		return
	}
	command, roles := ct.invocation()
	if command != "serve" {
		c.problemf("%s: probes `helpdeskflow %s`, which serves nothing", where, command)
		return
	}
	c.probes = append(c.probes, pathProbe{where: where, roles: roles, path: path, l: l, separateMetrics: ct.env[string(metricsListener)] != ""})
}

// dockerImage is what the Dockerfile's final stage sets up.
type dockerImage struct {
	binary      string            // the binary's path in the image
	entrypoint  []string          // ENTRYPOINT
	cmd         []string          // CMD: the default arguments
	env         map[string]string // ENV
	healthcheck []string          // HEALTHCHECK CMD
}

// dockerInstructions returns the Dockerfile's instructions, continuation
// lines joined and comments dropped: [keyword, rest].
func dockerInstructions(src []byte) [][2]string {
	var out [][2]string
	var cur strings.Builder
	for _, line := range strings.Split(string(src), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		keyword, rest, _ := strings.Cut(cur.String(), " ")
		out = append(out, [2]string{strings.ToUpper(keyword), strings.TrimSpace(rest)})
		cur.Reset()
	}
	return out
}

// checkDockerfile checks the build (Go version, the shared build script),
// the final stage (minimal base, non-root user, the copied binary named by
// ENTRYPOINT and HEALTHCHECK, EXPOSE of both listeners) and returns the
// image for the files that run it.
func (c *checker) checkDockerfile(files deployFiles) dockerImage {
	img := dockerImage{env: map[string]string{}}
	var stages, users []string
	var built string
	exposed := map[int]bool{}
	execForm := func(where, rest string) []string {
		var argv []string
		if err := json.Unmarshal([]byte(rest), &argv); err != nil {
			c.problemf("Dockerfile: %s %s is not the exec form (a JSON array): %v", where, rest, err)
		}
		return argv
	}
	for _, in := range dockerInstructions(files[dockerfilePath]) {
		keyword, rest := in[0], in[1]
		switch keyword {
		case "FROM":
			stages = append(stages, rest)
			users = nil
		case "RUN":
			if m := regexp.MustCompile(`scripts/build-static\.sh\s+(\S+)`).FindStringSubmatch(rest); m != nil {
				built = m[1]
			}
		case "COPY":
			if fields := strings.Fields(rest); len(fields) == 3 && strings.HasPrefix(fields[0], "--from=") && fields[1] == built {
				img.binary = fields[2]
			}
		case "USER":
			users = append(users, rest)
		case "ENV":
			for _, m := range regexp.MustCompile(`(\w+)=("[^"]*"|\S*)`).FindAllStringSubmatch(rest, -1) {
				img.env[m[1]] = strings.Trim(m[2], `"`)
			}
		case "EXPOSE":
			for _, p := range strings.Fields(rest) {
				n, _ := strconv.Atoi(strings.TrimSuffix(p, "/tcp"))
				exposed[n] = true
			}
		case "ENTRYPOINT":
			img.entrypoint = execForm(keyword, rest)
		case "CMD":
			img.cmd = execForm(keyword, rest)
		case "HEALTHCHECK":
			_, cmd, ok := strings.Cut(rest, "CMD ")
			if !ok {
				c.problemf("Dockerfile: HEALTHCHECK has no CMD: %s", rest)
				continue
			}
			img.healthcheck = execForm(keyword, cmd)
		}
	}
	if len(stages) < 2 {
		c.problemf("Dockerfile: %d stages, want a build stage and a final one", len(stages))
		return img
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(files["go.mod"])
	if build := stages[0]; goVersion != nil && !strings.HasPrefix(build, "golang:"+string(goVersion[1])+" ") {
		c.problemf("Dockerfile: builds on %q, want golang:%s as go.mod says", build, goVersion[1])
	}
	if built == "" {
		c.problemf("Dockerfile: no RUN builds with scripts/build-static.sh (the one definition of the build flags)")
	}
	if final := stages[len(stages)-1]; !strings.Contains(final, "distroless/static") && !strings.HasPrefix(final, "scratch") {
		c.problemf("Dockerfile: the final stage is %q, want distroless/static or scratch", final)
	}
	if len(users) == 0 || slices.ContainsFunc(users, func(u string) bool { return u == "root" || strings.HasPrefix(u, "0") }) {
		c.problemf("Dockerfile: the final stage runs as %q, want a non-root USER", users)
	}
	if img.binary == "" {
		c.problemf("Dockerfile: the final stage copies no binary built by scripts/build-static.sh (%q)", built)
	}
	if len(img.entrypoint) != 1 || img.entrypoint[0] != img.binary {
		c.problemf("Dockerfile: ENTRYPOINT %q, want [%q]", img.entrypoint, img.binary)
	}
	if len(img.healthcheck) < 2 || img.healthcheck[0] != img.binary {
		c.problemf("Dockerfile: HEALTHCHECK CMD %q does not run %s", img.healthcheck, img.binary)
	} else {
		// The image's ENV is serve's (checked with CMD); the healthcheck
		// reads only HDF_HTTP_ADDR of it.
		c.checkInvocation(container{where: "Dockerfile HEALTHCHECK", args: img.healthcheck[1:]})
		if img.healthcheck[1] != "healthcheck" || slices.ContainsFunc(img.healthcheck, func(a string) bool { return strings.HasPrefix(strings.TrimLeft(a, "-"), "url") }) {
			c.problemf("Dockerfile: HEALTHCHECK %q, want `healthcheck` on its default URL (/readyz on HDF_HTTP_ADDR)", img.healthcheck)
		}
	}
	c.checkInvocation(container{where: "Dockerfile CMD", args: img.cmd, env: img.env})
	for _, l := range []listener{httpListener, metricsListener} {
		if p, err := addrPort(img.env[string(l)]); err != nil || !exposed[p] {
			c.problemf("Dockerfile: %s=%q: its port is not EXPOSEd (%v)", l, img.env[string(l)], exposed)
		}
	}
	return img
}

// healthcheckProbe records the image's HEALTHCHECK (/readyz on the HTTP
// port, readyzURL's default) for a container running roles.
func (c *checker) healthcheckProbe(ct container, where string) {
	port, err := addrPort(ct.env[string(httpListener)])
	if err != nil {
		c.problemf("%s: HDF_HTTP_ADDR %q: %v", where, ct.env[string(httpListener)], err)
		return
	}
	c.probe(ct, where+" (the image's HEALTHCHECK)", port, "/readyz")
}

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

// checkKafkaTopics checks the topic script: it creates exactly the topics
// the binary uses, by default with as many partitions as serve would, each
// with a retention, and sets a max.message.bytes that takes the producers'
// record batches.
func (c *checker) checkKafkaTopics(files deployFiles) {
	src := string(files[kafkaTopicsScript])
	var topics []string
	for _, m := range regexp.MustCompile(`(?m)^topic (\S+) (\S+)$`).FindAllStringSubmatch(src, -1) {
		topics = append(topics, m[1])
		if ms, err := strconv.ParseInt(m[2], 10, 64); err != nil || ms < 24*3600*1000 {
			c.problemf("%s: topic %s keeps records %s ms, want a number of at least a day", kafkaTopicsScript, m[1], m[2])
		}
	}
	slices.Sort(topics)
	if want := []string{kafka.TopicAPIRequests, kafka.TopicEvents}; !slices.Equal(topics, want) {
		c.problemf("%s: creates topics %q, want the binary's %q", kafkaTopicsScript, topics, want)
	}
	if m := regexp.MustCompile(`(?m)^partitions=\$\{PARTITIONS:-(\d+)\}$`).FindStringSubmatch(src); m == nil || m[1] != strconv.Itoa(topicPartitions) {
		c.problemf("%s: new topics' partitions default %q, want %d as `serve` creates them", kafkaTopicsScript, m, topicPartitions)
	}
	m := regexp.MustCompile(`(?m)^max_message_bytes=(\d+)$`).FindStringSubmatch(src)
	if m == nil {
		c.problemf("%s: sets no max_message_bytes", kafkaTopicsScript)
	} else if n, _ := strconv.Atoi(m[1]); n < helpdeskflow.MaxRecordBytes {
		c.problemf("%s: max.message.bytes %d is below the producers' record batches (helpdeskflow.MaxRecordBytes %d)", kafkaTopicsScript, n, helpdeskflow.MaxRecordBytes)
	}
}
