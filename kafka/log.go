// NewLogger adapts a *slog.Logger for franz-go clients. franz-go logs
// every metadata refresh and group step at info level, which buries the
// service's own logs, so its records below warn are dropped unless the
// logger is at debug level.

package kafka

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kslog"
)

// NewLogger returns a franz-go logger writing to logger, keeping warnings and
// errors, and everything when logger has debug enabled.
func NewLogger(logger *slog.Logger) kgo.Logger {
	return kslog.New(slog.New(quietHandler{logger.Handler()}))
}

type quietHandler struct{ slog.Handler }

func (h quietHandler) Enabled(ctx context.Context, level slog.Level) bool {
	if h.Handler.Enabled(ctx, slog.LevelDebug) {
		return true
	}
	return level >= slog.LevelWarn && h.Handler.Enabled(ctx, level)
}

func (h quietHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quietHandler{h.Handler.WithAttrs(attrs)}
}

func (h quietHandler) WithGroup(name string) slog.Handler {
	return quietHandler{h.Handler.WithGroup(name)}
}
