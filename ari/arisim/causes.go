package arisim

import "github.com/privnum/privnum/ari"

// Q.850 hangup causes used by the simulator, as Asterisk numbers them: the
// ari package's named causes, as the ints the wire carries.
const (
	// CauseUnallocated is "Unallocated (unassigned) number", a 404.
	CauseUnallocated = int(ari.CauseUnallocated)
	// CauseNormal is "Normal Clearing": a BYE, or a REST hangup without reason.
	CauseNormal = int(ari.CauseNormalClearing)
	// CauseBusy is "User busy", a 486.
	CauseBusy = int(ari.CauseUserBusy)
	// CauseNoUserResponse is "No user responding", a 408.
	CauseNoUserResponse = int(ari.CauseNoUserResponse)
	// CauseNoAnswer is "User alerting, no answer": a 480, and dial timeouts.
	CauseNoAnswer = int(ari.CauseNoAnswer)
	// CauseCallRejected is "Call Rejected": a 603 from a callee, a 403 to a caller.
	CauseCallRejected = int(ari.CauseCallRejected)
	// CauseAnsweredElsewhere is "Answered elsewhere".
	CauseAnsweredElsewhere = int(ari.CauseAnsweredElsewhere)
	// CauseInvalidNumber is "Invalid number format", a 484.
	CauseInvalidNumber = int(ari.CauseInvalidNumber)
	// CauseNormalUnspecified is "Normal, unspecified".
	CauseNormalUnspecified = int(ari.CauseNormalUnspecified)
	// CauseCongestion is "Circuit/channel congestion", a 503.
	CauseCongestion = int(ari.CauseCongestion)
	// CauseFailure is "Network out of order", a 500.
	CauseFailure = int(ari.CauseNetworkOutOfOrder)
	// CauseCodecMismatch is "Bearer capability not available", a 488.
	CauseCodecMismatch = int(ari.CauseBearerUnavailable)
	// CauseInterworking is "Interworking, unspecified": a caller's CANCEL (487).
	CauseInterworking = int(ari.CauseInterworking)
)

// softhangupExplicit is AST_SOFTHANGUP_EXPLICIT: Asterisk reports the soft
// hangup flag as the "cause" of a ChannelHangupRequest with soft=true.
const softhangupExplicit = 32

// softhangupAppUnload is the flag value seen on the second, soft hangup
// request of an inbound channel whose dialplan ends after Stasis.
const softhangupAppUnload = 16

// CauseText returns Asterisk's text for a hangup cause (ast_cause2str).
func CauseText(cause int) string {
	switch cause {
	case 1:
		return "Unallocated (unassigned) number"
	case 2:
		return "No route to specified transmit network"
	case 3:
		return "No route to destination"
	case 6:
		return "Channel unacceptable"
	case 7:
		return "Call awarded and being delivered in an established channel"
	case 16:
		return "Normal Clearing"
	case 17:
		return "User busy"
	case 18:
		return "No user responding"
	case 19:
		return "User alerting, no answer"
	case 20:
		return "Subscriber absent"
	case 21:
		return "Call Rejected"
	case 22:
		return "Number changed"
	case 23:
		return "Redirected to new destination"
	case 26:
		return "Answered elsewhere"
	case 27:
		return "Destination out of order"
	case 28:
		return "Invalid number format"
	case 29:
		return "Facility rejected"
	case 30:
		return "Response to STATus ENQuiry"
	case 31:
		return "Normal, unspecified"
	case 34:
		return "Circuit/channel congestion"
	case 38:
		return "Network out of order"
	case 41:
		return "Temporary failure"
	case 42:
		return "Switching equipment congestion"
	case 43:
		return "Access information discarded"
	case 44:
		return "Requested channel not available"
	case 50:
		return "Facility not subscribed"
	case 52:
		return "Outgoing call barred"
	case 54:
		return "Incoming call barred"
	case 57:
		return "Bearer capability not authorized"
	case 58:
		return "Bearer capability not available"
	case 65:
		return "Bearer capability not implemented"
	case 66:
		return "Channel not implemented"
	case 69:
		return "Facility not implemented"
	case 81:
		return "Invalid call reference value"
	case 88:
		return "Incompatible destination"
	case 95:
		return "Invalid message unspecified"
	case 96:
		return "Mandatory information element is missing"
	case 97:
		return "Message type nonexist."
	case 98:
		return "Wrong message"
	case 99:
		return "Info. element nonexist or not implemented"
	case 100:
		return "Invalid information element contents"
	case 101:
		return "Message not compatible with call state"
	case 102:
		return "Recover on timer expiry"
	case 111:
		return "Protocol error, unspecified"
	case 127:
		return "Interworking, unspecified"
	}
	return "Unknown"
}

// hangupReason maps DELETE /channels/{id}?reason=NAME to a cause, as
// Asterisk 22's convert_reason_to_hangup_code does.
func hangupReason(name string) (int, bool) {
	switch name {
	case "normal":
		return CauseNormal, true
	case "busy":
		return CauseBusy, true
	case "congestion":
		return CauseCongestion, true
	case "no_answer":
		return CauseNoAnswer, true
	case "timeout":
		return CauseNoUserResponse, true
	case "rejected":
		return CauseCallRejected, true
	case "unallocated":
		return CauseUnallocated, true
	case "normal_unspecified":
		return CauseNormalUnspecified, true
	case "number_incomplete":
		return CauseInvalidNumber, true
	case "codec_mismatch":
		return CauseCodecMismatch, true
	case "interworking":
		return CauseInterworking, true
	case "failure":
		return CauseFailure, true
	case "answered_elsewhere":
		return CauseAnsweredElsewhere, true
	}
	return 0, false
}

// sipForPeerCause is the SIP final response a far party sends that makes
// chan_pjsip hang the outbound leg up with the given cause (the tech_cause of
// ChannelHangupRequest / ChannelDestroyed). 0 means none (a BYE).
func sipForPeerCause(cause int) int {
	switch cause {
	case CauseUnallocated, 3:
		return 404
	case CauseBusy:
		return 486
	case CauseNoUserResponse:
		return 408
	case CauseNoAnswer, 20:
		return 480
	case CauseCallRejected:
		return 603
	case 27:
		return 502
	case CauseInvalidNumber:
		return 484
	case CauseCongestion, 42:
		return 503
	case CauseFailure:
		return 500
	case CauseInterworking:
		return 487
	}
	return 0
}

// sipForHangupCause is chan_pjsip's hangup_cause2sip: the final response an
// unanswered inbound caller receives when Asterisk hangs the channel up with
// the cause. Unmapped causes yield 603 Decline.
func sipForHangupCause(cause int) int {
	switch cause {
	case CauseUnallocated, 2, 3:
		return 404
	case CauseCongestion, 42, 66:
		return 503
	case CauseNoUserResponse:
		return 408
	case CauseNoAnswer, 20:
		return 480
	case CauseCallRejected:
		return 403
	case 22:
		return 410
	case CauseNormalUnspecified:
		return 480
	case CauseInvalidNumber:
		return 484
	case CauseBusy:
		return 486
	case CauseFailure, CauseInterworking:
		return 500
	case 29:
		return 501
	case 27:
		return 502
	case CauseCodecMismatch:
		return 488
	}
	return 603
}

// dialStatusForCause is ast_hangup_cause_to_dial_status: the dialstatus of
// the Dial event published when an originated leg hangs up before answer.
func dialStatusForCause(cause int) string {
	switch cause {
	case CauseBusy:
		return "BUSY"
	case CauseCongestion:
		return "CONGESTION"
	case CauseNoAnswer:
		return "NOANSWER"
	}
	return "CHANUNAVAIL"
}
