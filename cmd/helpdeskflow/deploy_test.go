package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v4"

	"github.com/helpdeskflow/helpdeskflow/internal/secretbox"
	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
)

// The files of deploy/ and docs/ these tests read, from this package's directory.
const (
	dashboardFile  = "../../deploy/grafana/dashboards/helpdeskflow.json"
	datasourceFile = "../../deploy/grafana/provisioning/datasources/prometheus.yml"
	alertsFile     = "../../deploy/prometheus/alerts.yml"
	runbookFile    = "../../docs/runbook.md"
)

// TestDeploy_QueriesNameExportedMetrics: Grafana cannot run here, so every
// PromQL expression of the dashboard and of the alerting rules is parsed
// with Prometheus's own parser, and every metric it selects (a histogram's
// _bucket, _sum and _count series included) must be one a role of the
// binary registers, built here the way serve builds them; a label it
// matches on must be one of that metric's labels (or a scrape label). A
// misspelt metric or label fails the test.
func TestDeploy_QueriesNameExportedMetrics(t *testing.T) {
	exported := exportedMetrics(t)
	queries := append(dashboardQueries(t), alertQueries(t)...)
	if len(queries) < 40 {
		t.Fatalf("found %d queries in the dashboard and the alerts; want the 40 or more they hold", len(queries))
	}
	for _, q := range queries {
		selectors, err := selectorsOf(q.expr)
		if err != nil {
			t.Errorf("%s: %v", q.where, err)
			continue
		}
		for _, sel := range selectors {
			if msg := exported.check(sel); msg != "" {
				t.Errorf("%s: %s\n  in %s", q.where, msg, q.expr)
			}
		}
	}
}

// TestDeploy_SelectorCheckFindsMistakes makes sure the check above can
// fail: a misspelt metric, a histogram suffix on a gauge, a label the
// metric does not have, and a metric chosen by a regular expression are
// each refused.
func TestDeploy_SelectorCheckFindsMistakes(t *testing.T) {
	exported := metricSet{
		"helpdeskflow_relay_lag_seconds":             {labels: nil},
		"helpdeskflow_http_request_duration_seconds": {labels: []string{"method", "route"}, histogram: true},
	}
	for _, tc := range []struct {
		expr string
		ok   bool
	}{
		{`max(helpdeskflow_relay_lag_seconds)`, true},
		{`histogram_quantile(0.99, sum by (le, route) (rate(helpdeskflow_http_request_duration_seconds_bucket{route="/v1/tickets", job="helpdeskflow"}[5m])))`, true},
		{`max(helpdeskflow_relay_lag_second)`, false},
		{`max(helpdeskflow_relay_lag_seconds_bucket)`, false},
		{`sum(rate(helpdeskflow_http_request_duration_seconds_count{path="/v1/tickets"}[5m]))`, false},
		{`sum(rate({__name__=~"helpdeskflow_http_.*"}[5m]))`, false},
	} {
		selectors, err := selectorsOf(tc.expr)
		if err != nil {
			if tc.ok {
				t.Errorf("%s: %v", tc.expr, err)
			}
			continue
		}
		var problems []string
		for _, sel := range selectors {
			if msg := exported.check(sel); msg != "" {
				problems = append(problems, msg)
			}
		}
		if got := len(problems) == 0; got != tc.ok {
			t.Errorf("%s: check found %q; want ok = %v", tc.expr, problems, tc.ok)
		}
	}
}

// TestDeploy_AlertsLinkRunbookSections: every alert has a summary and a
// runbook_url whose anchor is a section of docs/runbook.md (GitHub's
// heading anchors), the runbook's links to its own sections resolve, and
// the dashboard queries the datasource Grafana is provisioned with.
func TestDeploy_AlertsLinkRunbookSections(t *testing.T) {
	runbook, err := os.ReadFile(runbookFile)
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(runbook), "\n") {
		if strings.HasPrefix(line, "#") {
			anchors[headingAnchor(strings.TrimLeft(line, "#"))] = true
		}
	}
	for _, link := range regexp.MustCompile(`\]\(#([^)]+)\)`).FindAllStringSubmatch(string(runbook), -1) {
		if !anchors[link[1]] {
			t.Errorf("docs/runbook.md links to #%s, which is none of its sections", link[1])
		}
	}
	rules := readAlertRules(t)
	if len(rules) == 0 {
		t.Fatal("no alerting rules found")
	}
	const base = "https://github.com/helpdeskflow/helpdeskflow/blob/main/docs/runbook.md#"
	for _, r := range rules {
		if r.Annotations["summary"] == "" {
			t.Errorf("alert %s has no summary", r.Alert)
		}
		url := r.Annotations["runbook_url"]
		anchor, ok := strings.CutPrefix(url, base)
		if !ok || !anchors[anchor] {
			t.Errorf("alert %s: runbook_url %q is not %s<a section of docs/runbook.md>", r.Alert, url, base)
		}
	}

	var provisioned struct {
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
		} `yaml:"datasources"`
	}
	readYAML(t, datasourceFile, &provisioned)
	uids := map[string]bool{}
	for _, d := range provisioned.Datasources {
		uids[d.Type+"/"+d.UID] = true
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ds, ok := v["datasource"].(map[string]any); ok && ds["type"] == "prometheus" {
				if key := fmt.Sprintf("%v/%v", ds["type"], ds["uid"]); !uids[key] {
					t.Errorf("the dashboard queries datasource %s, which %s does not provision", key, datasourceFile)
				}
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(readDashboard(t))
}

// query is one PromQL expression and where it was found.
type query struct{ where, expr string }

// metricInfo is what a registered metric allows a query to select.
type metricInfo struct {
	labels    []string // variable labels
	histogram bool     // has _bucket, _sum and _count series
	summary   bool     // has _sum, _count and a quantile label
}

// metricSet is the metrics a process exports, by name.
type metricSet map[string]metricInfo

// scrapeLabels are the labels every series has from Prometheus's scrape
// (deploy/prometheus/prometheus.yml), whatever its metric.
var scrapeLabels = []string{"__name__", "job", "instance", "role"}

// check returns what is wrong with a selector (a metric not exported, a
// label it lacks), or "".
func (s metricSet) check(sel *parser.VectorSelector) string {
	name := sel.Name
	for _, m := range sel.LabelMatchers {
		if m.Name == labels.MetricName && m.Type != labels.MatchEqual {
			return fmt.Sprintf("selects metrics by %s, which this test cannot check: name them", m)
		}
		if m.Name == labels.MetricName {
			name = m.Value
		}
	}
	info, ok := s[name]
	extra := []string{}
	if !ok {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			base, found := strings.CutSuffix(name, suffix)
			if !found {
				continue
			}
			if i, ok2 := s[base]; ok2 && (i.histogram || i.summary && suffix != "_bucket") {
				info, ok = i, true
				if suffix == "_bucket" {
					extra = append(extra, "le")
				}
			}
		}
	}
	if !ok {
		return fmt.Sprintf("metric %s is not exported by any role", name)
	}
	if info.summary {
		extra = append(extra, "quantile")
	}
	for _, m := range sel.LabelMatchers {
		if !slices.Contains(info.labels, m.Name) && !slices.Contains(scrapeLabels, m.Name) && !slices.Contains(extra, m.Name) {
			return fmt.Sprintf("metric %s has no label %s (it has %v)", name, m.Name, info.labels)
		}
	}
	return ""
}

// exportedMetrics builds every role the way serve does (webhooks and
// integrations on: a keyring is set) and returns the metrics their
// collectors describe.
func exportedMetrics(t *testing.T) metricSet {
	t.Helper()
	_, brokers := testenv.Kafka(t)
	keys, err := secretbox.NewKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := parseConfig("serve", []string{"--postgres-url", testenv.PostgresDatabase(t),
		"--clickhouse-addr", testenv.ClickHouseAddr(), "--clickhouse-database", clickHouseDatabase(t),
		"--secret-keys", keys, "--roles", "api,relay,projector,dispatcher", "--log-level", "warn"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := newProcess(ctx, cfg, logger, brokers)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	roles, _, err := newRoles(ctx, p)
	defer func() {
		for i := len(roles) - 1; i >= 0; i-- {
			roles[i].Close()
		}
	}()
	if err != nil {
		t.Fatal(err)
	}
	if len(roles) != 4 {
		t.Fatalf("built %d roles, want 4", len(roles))
	}

	set := metricSet{}
	fqName := regexp.MustCompile(`fqName: "([^"]*)"`)
	varLabels := regexp.MustCompile(`variableLabels: \{([^}]*)\}`)
	for _, c := range p.reg.registered() {
		_, histogram := c.(prometheus.Histogram)
		if _, vec := c.(*prometheus.HistogramVec); vec {
			histogram = true
		}
		_, summary := c.(prometheus.Summary)
		if _, vec := c.(*prometheus.SummaryVec); vec {
			summary = true
		}
		ch := make(chan *prometheus.Desc)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			// Desc keeps its name and labels private; its String shows them.
			m := fqName.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read the name of %s", d)
			}
			var names []string
			if l := varLabels.FindStringSubmatch(d.String()); l != nil && l[1] != "" {
				names = strings.Split(l[1], ",")
			}
			set[m[1]] = metricInfo{labels: names, histogram: histogram, summary: summary}
		}
	}
	return set
}

// dashboardQueries returns every "expr" of the dashboard, with its panel's
// title, after replacing Grafana's interval variables with 5m.
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	grafanaVar := regexp.MustCompile(`\$\{?__(rate_interval|interval|range)\}?`)
	var out []query
	var walk func(v any, where string)
	walk = func(v any, where string) {
		switch v := v.(type) {
		case map[string]any:
			if title, ok := v["title"].(string); ok {
				where = "dashboard panel " + strconvQuote(title)
			}
			if expr, ok := v["expr"].(string); ok {
				out = append(out, query{where, grafanaVar.ReplaceAllString(expr, "5m")})
			}
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(v[k], where)
			}
		case []any:
			for _, e := range v {
				walk(e, where)
			}
		}
	}
	walk(readDashboard(t), "dashboard")
	return out
}

// alertRule is one rule of alerts.yml.
type alertRule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	Annotations map[string]string `yaml:"annotations"`
}

func readAlertRules(t *testing.T) []alertRule {
	t.Helper()
	var file struct {
		Groups []struct {
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, alertsFile, &file)
	var rules []alertRule
	for _, g := range file.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules
}

func alertQueries(t *testing.T) []query {
	t.Helper()
	var out []query
	for _, r := range readAlertRules(t) {
		out = append(out, query{"alert " + r.Alert + r.Record, r.Expr})
	}
	return out
}

// selectorsOf parses expr and returns its vector selectors.
func selectorsOf(expr string) ([]*parser.VectorSelector, error) {
	node, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var out []*parser.VectorSelector
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs)
		}
		return nil
	})
	return out, nil
}

// headingAnchor is GitHub's anchor of a Markdown heading: lower case,
// punctuation dropped, spaces to hyphens.
func headingAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

func readDashboard(t *testing.T) any {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return v
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func strconvQuote(s string) string { return fmt.Sprintf("%q", s) }
