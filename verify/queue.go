package verify

import "context"

// FlashJobKind is the dial-queue kind of verification flash calls.
const FlashJobKind = "flash"

// Queue hands a job to the process holding call control. *dialq.Queue
// implements it.
type Queue interface {
	Enqueue(ctx context.Context, kind, id string) error
}

// QueueFlasher is the Flasher of a process without call control: it queues
// the verification's id (FlashJobKind) for the process that has it, which
// places the call with PlaceFlash. The number and caller ID stay in Redis.
type QueueFlasher struct{ Queue Queue }

// Flash queues verification id.
func (f QueueFlasher) Flash(ctx context.Context, id, _, _ string) error {
	return f.Queue.Enqueue(ctx, FlashJobKind, id)
}

// FlashDialer rings a number from a caller ID and hangs up. *call.App
// implements it.
type FlashDialer interface {
	Flash(ctx context.Context, number, callerID string) error
}

// FlashJobs places queued flash calls: its Place is the dial-queue handler
// of FlashJobKind in the process holding call control.
type FlashJobs struct {
	Service *Service
	Dialer  FlashDialer
}

// Place reads the target of verification id (FlashTarget) and has Dialer
// ring it. A verification that is no longer pending is not rung: the error
// wraps ErrNotFound or ErrExpired.
func (f FlashJobs) Place(ctx context.Context, id string) error {
	number, callerID, err := f.Service.FlashTarget(ctx, id)
	if err != nil {
		return err
	}
	return f.Dialer.Flash(ctx, number, callerID)
}
