package notify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Pending is a pending request as the reminder scheduler sees it.
type Pending struct {
	RequestID string
	Gate      string
	// OpenedIndex is the log index of its request.opened event.
	OpenedIndex int64
	// ExpiresAt is when it expires (zero: unknown).
	ExpiresAt time.Time
	// Waiting is who it waits on now.
	Waiting *Waiting
	// Since says, for each missing role, when and from which log entry the
	// wait on it started: the later of the request's opening and the
	// role's last accepted signature.
	Since map[string]Mark
}

// Mark is a point of the log: an entry's index and logged time.
type Mark struct {
	Index int64
	Time  time.Time
}

// Reminders returns the reminders due at now for the pending requests,
// one delivery per endpoint that subscribes to [ReminderType] for the
// request's gate and configures reminders for it:
//
//   - "waiting": a role has been waited on for at least the gate's After
//     since its Mark. The webhook-id names the request, role and the Mark's
//     index, so it is sent once per wait: a signature for the role (that
//     does not complete it) starts a new wait and, After later, a new
//     reminder.
//   - "expiry": now is within BeforeExpiry of the request's expiry; once
//     per request.
//
// The outbox's Enqueue drops reminders already written, so calling
// Reminders again (on any replica) adds nothing.
func Reminders(c *Config, now time.Time, pending []Pending) []Delivery {
	var out []Delivery
	for _, p := range pending {
		if p.Waiting == nil {
			continue
		}
		for _, ep := range c.Endpoints {
			if !ep.Wants(ReminderType, p.Gate) {
				continue
			}
			r := ep.ReminderFor(p.Gate)
			if r.After > 0 {
				for _, m := range p.Waiting.Missing {
					since, ok := p.Since[m.Role]
					if !ok || now.Sub(since.Time) < r.After {
						continue
					}
					out = append(out, Delivery{
						Endpoint: ep.Name, MessageID: ReminderMessageID(p.RequestID, ReasonWaiting, m.Role, since.Index),
						Index: since.Index, OrderKey: p.RequestID, Gate: p.Gate,
						Reminder: &ReminderInfo{Reason: ReasonWaiting, Role: m.Role, Since: since.Time.UTC().Format(time.RFC3339)},
						Waiting:  p.Waiting,
					})
				}
			}
			if r.BeforeExpiry > 0 && !p.ExpiresAt.IsZero() && !now.Before(p.ExpiresAt.Add(-r.BeforeExpiry)) && now.Before(p.ExpiresAt) {
				out = append(out, Delivery{
					Endpoint: ep.Name, MessageID: ReminderMessageID(p.RequestID, ReasonExpiry, "", p.OpenedIndex),
					Index: p.OpenedIndex, OrderKey: p.RequestID, Gate: p.Gate,
					Reminder: &ReminderInfo{Reason: ReasonExpiry},
					Waiting:  p.Waiting,
				})
			}
		}
	}
	return out
}

// Scheduler enqueues reminders periodically.
type Scheduler struct {
	Config *Config
	Outbox Outbox
	// Pending lists the pending requests (from the store).
	Pending func(ctx context.Context) ([]Pending, error)
	// Clock gives the time; nil: time.Now.
	Clock func() time.Time
	// Interval between runs of Run; default 1m.
	Interval time.Duration
	Metrics  *Metrics
	Logger   *zap.Logger
}

// RunOnce enqueues the reminders due now and returns how many were new.
func (s *Scheduler) RunOnce(ctx context.Context) (int, error) {
	if s.Config == nil || s.Outbox == nil || s.Pending == nil {
		return 0, errors.New("notify: a scheduler needs Config, Outbox and Pending")
	}
	now := time.Now()
	if s.Clock != nil {
		now = s.Clock()
	}
	ps, err := s.Pending(ctx)
	if err != nil {
		return 0, fmt.Errorf("notify: listing pending requests: %w", err)
	}
	byReason := map[string][]Delivery{}
	for _, d := range Reminders(s.Config, now, ps) {
		byReason[d.Reminder.Reason] = append(byReason[d.Reminder.Reason], d)
	}
	total := 0
	for _, reason := range []string{ReasonWaiting, ReasonExpiry} {
		if len(byReason[reason]) == 0 {
			continue
		}
		n, err := s.Outbox.Enqueue(ctx, byReason[reason]...)
		if err != nil {
			return total, fmt.Errorf("notify: enqueueing reminders: %w", err)
		}
		s.Metrics.reminded(reason, n)
		total += n
	}
	return total, nil
}

// Run enqueues reminders every Interval until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	iv := s.Interval
	if iv <= 0 {
		iv = time.Minute
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		if _, err := s.RunOnce(ctx); err != nil && ctx.Err() == nil && s.Logger != nil {
			s.Logger.Warn("webhook reminders", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
