package main

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/gmail"
	"github.com/helpdeskflow/helpdeskflow/clients/oauth/oauthtest"
	"github.com/helpdeskflow/helpdeskflow/integrations"
	"github.com/helpdeskflow/helpdeskflow/mailsync"
	"github.com/helpdeskflow/helpdeskflow/mailsync/mail"
)

// connectGmail runs the OAuth flow for the workspace's Gmail connection,
// as integrationstest.Connect does: Connect, consent at the fake, Callback.
func connectGmail(ctx context.Context, m *integrations.Manager, fake *oauthtest.Server, ws uuid.UUID) (helpdeskflow.Connection, error) {
	_, authURL, err := m.Connect(ctx, ws, mailsync.ProviderGmail, "")
	if err != nil {
		return helpdeskflow.Connection{}, fmt.Errorf("connect Gmail: %w", err)
	}
	code, err := fake.Authorize(authURL)
	if err != nil {
		return helpdeskflow.Connection{}, fmt.Errorf("connect Gmail: consent: %w", err)
	}
	u, err := url.Parse(authURL)
	if err != nil {
		return helpdeskflow.Connection{}, fmt.Errorf("connect Gmail: %w", err)
	}
	c, err := m.Callback(ctx, mailsync.ProviderGmail, u.Query().Get("state"), code, "")
	if err != nil {
		return helpdeskflow.Connection{}, fmt.Errorf("connect Gmail: callback: %w", err)
	}
	return c, nil
}

// mailFetchAndParse lists the mailbox as the sync does (the 7-day window,
// pages of 500) and fetches and parses every message, sequentially, with
// the last pipeline round's access token: the pipeline without Postgres.
func mailFetchAndParse(ctx context.Context, env *mailEnv) mailFetchParse {
	var f mailFetchParse
	if env.token == "" {
		f.Error = "no pipeline round ran, so there is no access token"
		return f
	}
	token := env.token
	client := gmail.New(env.gmail.URL(), nil, func(context.Context) (string, error) { return token, nil })
	query := "after:" + strconv.FormatInt(time.Now().Add(-7*24*time.Hour).Unix(), 10) + " -in:sent"
	start := time.Now()
	var ids []string
	pageToken := ""
	for {
		page, err := client.List(ctx, query, mailPageSize, pageToken)
		if err != nil {
			f.Error = fmt.Sprintf("list: %v", err)
			return f
		}
		ids = append(ids, page.MessageIDs...)
		if pageToken = page.NextPageToken; pageToken == "" {
			break
		}
	}
	slices.Reverse(ids)
	f.ListSeconds = round3(time.Since(start).Seconds())
	var getD, parseD time.Duration
	for _, id := range ids {
		t := time.Now()
		raw, err := client.Get(ctx, id)
		t1 := time.Now()
		getD += t1.Sub(t)
		if err != nil {
			f.Error = fmt.Sprintf("get %s: %v", id, err)
			break
		}
		if _, err := mail.Parse(raw.Raw); err != nil {
			f.Error = fmt.Sprintf("parse %s: %v", id, err)
			break
		}
		parseD += time.Since(t1)
		f.Messages++
		f.Bytes += int64(len(raw.Raw))
	}
	elapsed := time.Since(start)
	f.Seconds = round3(elapsed.Seconds())
	f.GetSeconds, f.ParseSeconds = round3(getD.Seconds()), round3(parseD.Seconds())
	if f.Seconds > 0 {
		f.PerSecond = round1(float64(f.Messages) / elapsed.Seconds())
	}
	return f
}
