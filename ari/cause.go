package ari

import "strconv"

// Cause is a Q.850 hang-up cause, as ARI reports it on ChannelDestroyed and
// ChannelHangupRequest and as a hang-up request can carry it.
type Cause int

// The causes privnum reads, sends or simulates.
const (
	CauseUnknown           Cause = 0
	CauseUnallocated       Cause = 1   // unallocated (unassigned) number (SIP 404)
	CauseNormalClearing    Cause = 16  // normal call clearing
	CauseUserBusy          Cause = 17  // user busy (SIP 486)
	CauseNoUserResponse    Cause = 18  // no user responding (SIP 408)
	CauseNoAnswer          Cause = 19  // no answer from user (SIP 480)
	CauseCallRejected      Cause = 21  // call rejected (SIP 403/603)
	CauseAnsweredElsewhere Cause = 26  // answered elsewhere
	CauseInvalidNumber     Cause = 28  // invalid number format (SIP 484)
	CauseNormalUnspecified Cause = 31  // normal, unspecified
	CauseCongestion        Cause = 34  // no circuit/channel available (SIP 503)
	CauseNetworkOutOfOrder Cause = 38  // network out of order (SIP 500)
	CauseTemporaryFailure  Cause = 41  // temporary failure
	CauseBearerUnavailable Cause = 58  // bearer capability not available (SIP 488)
	CauseInterworking      Cause = 127 // interworking, unspecified (a caller's CANCEL)
)

var causeNames = map[Cause]string{
	CauseUnknown: "unknown", CauseUnallocated: "unallocated", CauseNormalClearing: "normal_clearing",
	CauseUserBusy: "user_busy", CauseNoUserResponse: "no_user_response", CauseNoAnswer: "no_answer",
	CauseCallRejected: "call_rejected", CauseAnsweredElsewhere: "answered_elsewhere",
	CauseInvalidNumber: "invalid_number_format", CauseNormalUnspecified: "normal_unspecified",
	CauseCongestion: "congestion", CauseNetworkOutOfOrder: "network_out_of_order",
	CauseTemporaryFailure: "temporary_failure", CauseBearerUnavailable: "bearer_unavailable",
	CauseInterworking: "interworking",
}

// String names the cause ("user_busy"), or gives its number.
func (c Cause) String() string {
	if n, ok := causeNames[c]; ok {
		return n
	}
	return "cause_" + strconv.Itoa(int(c))
}
