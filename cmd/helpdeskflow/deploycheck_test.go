package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

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
	if want := []string{kafka.TopicAPIRequests, kafka.TopicEvents, kafka.TopicServiceFacts}; !slices.Equal(topics, want) {
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
