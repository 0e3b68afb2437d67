package main

import (
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"net"
	nethttp "net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// repoRoot is the repository's root, seen from this package's directory
// (where go test runs its tests).
const repoRoot = "../.."

// TestImage: the binary scripts/build-static.sh builds (the Dockerfile's
// build, with the same flags) is static; the Dockerfile, docker-compose.yml
// and deploy/kubernetes name only commands, flags and HDF_* variables that
// binary knows, and every probe, HEALTHCHECK and scrape asks a path the
// role serves on that port; and the checks catch a misspelling in each of
// those files. Docker is not needed: nothing here builds an image.
func TestImage(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "helpdeskflow")
	build := exec.Command("sh", filepath.Join(repoRoot, "scripts/build-static.sh"), bin)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("scripts/build-static.sh: %v\n%s", err, out)
	}
	t.Run("static", func(t *testing.T) {
		for _, p := range staticProblems(bin) {
			t.Error(p)
		}
		// The check can fail: this test binary is neither stripped nor
		// built with -trimpath.
		if len(staticProblems(os.Args[0])) == 0 {
			t.Errorf("the test binary %s passes the static check", os.Args[0])
		}
	})

	facts, err := newBinaryFacts(bin)
	if err != nil {
		t.Fatal(err)
	}
	files, err := readDeployFiles(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	served := runningRoles(t)
	t.Run("files", func(t *testing.T) {
		for _, p := range checkDeployFiles(files, facts, served) {
			t.Error(p)
		}
	})

	t.Run("misspellings are caught", func(t *testing.T) {
		for _, m := range []struct{ file, old, new, want string }{
			{composePath, `"serve", "--roles", "relay"`, `"serve", "--role", "relay"`, "has no flag --role"},
			{composePath, "HDF_CLICKHOUSE_ADDR:", "HDF_CLICKHOUSE_ADR:", "reads no variable HDF_CLICKHOUSE_ADR"},
			{composePath, "KAFKA_MESSAGE_MAX_BYTES: 1048588", "KAFKA_MESSAGE_MAX_BYTES: 65536", "KAFKA_MESSAGE_MAX_BYTES 65536 is below"},
			{composePath, `command: ["migrate"]`, `command: ["migrations"]`, `runs "migrations"`},
			{dockerfilePath, `"healthcheck", "--timeout"`, `"healthcheck", "--timout"`, "has no flag --timout"},
			{dockerfilePath, `"healthcheck", "--timeout"`, `"health-check", "--timeout"`, `runs "health-check"`},
			{dockerfilePath, "USER 65532:65532", "USER root", "non-root"},
			{dockerfilePath, "scripts/build-static.sh /out/helpdeskflow", "CGO_ENABLED=0 go build -o /out/helpdeskflow ./cmd/helpdeskflow", "scripts/build-static.sh"},
			{dockerfilePath, "FROM golang:1.26 AS build", "FROM golang:1.25 AS build", "as go.mod says"},
			{kubernetesDir + "/config.yaml", "HDF_METRICS_ADDR:", "HDF_METRICS_ADRR:", "reads no variable HDF_METRICS_ADRR"},
			{kubernetesDir + "/projector.yaml", `"--roles", "projector"`, `"--roles", "projecter"`, `unknown role "projecter"`},
			{kubernetesDir + "/projector.yaml", `args: ["serve", "--roles", "projector"]`, `args: ["serve", "--roles", "projector", "--metrics-adr=:9100"]`, "has no flag --metrics-adr"},
			{kubernetesDir + "/relay.yaml", "path: /readyz", "path: /ready", "GET /ready on"},
			{kubernetesDir + "/dispatcher.yaml", "port: http", "port: htp", `port "htp" is not one of the container's ports`},
			{kubernetesDir + "/api.yaml", `prometheus.io/port: "9100"`, `prometheus.io/port: "8080"`, "GET /metrics on HDF_HTTP_ADDR of `serve --roles api` answers 404"},
			{kubernetesDir + "/api.yaml", "kind: PodDisruptionBudget", "kind: PodDisruptionBudgett", "no PodDisruptionBudget"},
			{kubernetesDir + "/kustomization.yaml", "  - dispatcher.yaml\n", "", "want every manifest"},
			{kafkaTopicsScript, "topic helpdeskflow.events ", "topic helpdeskflow.event ", "want the binary's"},
			{kafkaTopicsScript, "max_message_bytes=1048588", "max_message_bytes=100000", "max.message.bytes 100000 is below"},
			{kafkaTopicsScript, "partitions=${PARTITIONS:-8}", "partitions=${PARTITIONS:-6}", "partitions default"},
			{kafkaTopicsScript, "topic helpdeskflow.api-requests 259200000", "topic helpdeskflow.api-requests 3d", "keeps records 3d ms"},
		} {
			changed := deployFiles{}
			for k, v := range files {
				changed[k] = v
			}
			if !strings.Contains(string(files[m.file]), m.old) {
				t.Errorf("%s no longer holds %q: update this misspelling", m.file, m.old)
				continue
			}
			changed[m.file] = []byte(strings.Replace(string(files[m.file]), m.old, m.new, 1))
			problems := checkDeployFiles(changed, facts, served)
			if !strings.Contains(strings.Join(problems, "\n"), m.want) {
				t.Errorf("%s with %q for %q: problems %q, want one saying %q", m.file, m.new, m.old, problems, m.want)
			}
		}
	})
}

// staticProblems says why the binary at path is not what the image needs:
// it asks for a dynamic loader or shared libraries, was built with cgo or
// without -trimpath, or keeps its symbol table.
func staticProblems(path string) []string {
	var problems []string
	f, err := elf.Open(path)
	if err != nil {
		return []string{err.Error()}
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			problems = append(problems, path+": has a program interpreter (PT_INTERP): it is linked dynamically")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		problems = append(problems, fmt.Sprintf("%s: needs shared libraries %q (%v)", path, libs, err))
	}
	if _, err := f.Symbols(); !errors.Is(err, elf.ErrNoSymbols) {
		problems = append(problems, path+": keeps its symbol table (want -ldflags -s)")
	}
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return append(problems, err.Error())
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
		problems = append(problems, fmt.Sprintf("%s: built with CGO_ENABLED=%q -trimpath=%q, want 0 and true", path, settings["CGO_ENABLED"], settings["-trimpath"]))
	}
	return problems
}

// runningRoles answers pathProbes by running `serve --roles <roles>` in
// this process on the test servers, once for each roles and metrics
// setting, for as long as t runs.
func runningRoles(t *testing.T) servedFunc {
	cfg := testConfig(t)
	_, brokers := testenv.Kafka(t)
	type key struct {
		roles           string
		separateMetrics bool
	}
	urls := map[key]map[listener]string{}
	return func(p pathProbe) (int, error) {
		k := key{p.roles, p.separateMetrics}
		if urls[k] == nil {
			c := cfg
			if p.separateMetrics {
				c.MetricsAddr = freeAddr(t)
			}
			urls[k] = map[listener]string{httpListener: "http://" + runRoles(t, c, brokers, p.roles), metricsListener: "http://" + c.MetricsAddr}
		}
		resp, err := nethttp.Get(urls[k][p.l] + p.path)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
}

// freeAddr returns a loopback address no listener holds at the moment.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
