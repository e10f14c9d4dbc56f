/* Divergence repair (docs/failover.md), Kafka's leader-epoch protocol with
 * KIP-279's rounds. A follower that has just learned of a leader asks where
 * the epoch of its own last batch ends in the leader's log (EPOCH_REQ); the
 * answer (EPOCH_END) names the largest epoch not above it that the leader
 * holds, E, and where E ends there.
 *  - If the follower holds E too, both hold E's batches from E's one leader,
 *    so the logs agree up to where E ends in the shorter of the two: the
 *    follower cuts its log there, and is done.
 *  - If not, everything it holds after its own epochs up to E is of epochs
 *    the leader never had (the leader has none between E and the epoch
 *    asked about): it cuts where those begin, a batch boundary of its log,
 *    and asks again about its new last epoch, which is lower, so the rounds
 *    end.
 * Until then it neither takes data nor reports positions, and it never cuts
 * below what it knows is committed. */
#include "proto_int.h"

static void ask(struct sl_proto *p, uint64_t now)
{
	struct sl_frame f = {.hdr.type = SL_FRAME_EPOCH_REQ};

	p->el.asked = p->last_epoch;
	p->el.ask_at = now + p->cfg.nak_interval_ns;
	f.ereq = (struct sl_frame_epoch_req){.epoch = p->el.asked, .log_end = p->log_end};
	sl_proto_send(p, p->cfg.leader_id, &p->seq_to_leader, &f);
}

static void synced(struct sl_proto *p, uint64_t now)
{
	/* What we learned as committed beyond our log end was in another
	 * leader's log: this one will tell us again, in its own. */
	if (p->safe_pos > p->log_end)
		p->safe_pos = p->commit_pos = p->log_end;
	p->el.synced = 1;
	p->el.ask_at = UINT64_MAX;
	p->leader_end = p->highest_seen = p->log_end;
	p->status_dirty = 1;
	sl_follower_tick(p, now); /* report where we stand */
}

void sl_diverge_start(struct sl_proto *p, uint64_t now)
{
	if (p->role != SL_ROLE_FOLLOWER || !p->cfg.leader_id || p->failed)
		return;
	p->el.synced = 0;
	/* An empty log, or one whose last batch is the leader's own epoch, is a
	 * prefix of the leader's log already. */
	if (p->log_end == 0 || p->last_epoch == p->cfg.epoch) {
		synced(p, now);
		return;
	}
	ask(p, now);
}

void sl_diverge_tick(struct sl_proto *p, uint64_t now)
{
	if (!p->el.synced && p->cfg.leader_id && now >= p->el.ask_at)
		ask(p, now);
}

void sl_diverge_on_req(struct sl_proto *p, const struct sl_frame *f, uint64_t now)
{
	struct sl_frame r = {.hdr.type = SL_FRAME_EPOCH_END};
	struct sl_epoch_bound b;
	uint64_t *seq = &p->seq_to_leader;

	(void)now;
	sl_epoch_map_end_of(&p->el.map, f->ereq.epoch, p->log_end, p->next_lsn, p->last_crc, &b);

	for (uint32_t i = 0; i < p->n_peers; i++)
		if (p->peers[i].id == f->hdr.sender)
			seq = &p->peers[i].seq;
	r.eend = (struct sl_frame_epoch_end){
	    .epoch = b.epoch, .end_pos = b.pos, .end_lsn = b.lsn, .end_crc = b.crc};
	sl_proto_send(p, f->hdr.sender, seq, &r);
}

void sl_diverge_on_end(struct sl_proto *p, const struct sl_frame *f, uint64_t now)
{
	const struct sl_frame_epoch_end *a = &f->eend;
	struct sl_epoch_bound own;
	uint64_t cut, lsn;
	uint32_t crc;

	if (p->el.synced || a->epoch > p->el.asked)
		return; /* an answer to a question no longer asked */
	sl_epoch_map_end_of(&p->el.map, a->epoch, p->log_end, p->next_lsn, p->last_crc, &own);
	if (own.epoch == a->epoch && a->end_pos <= own.pos)
		cut = a->end_pos, lsn = a->end_lsn, crc = a->end_crc;
	else
		cut = own.pos, lsn = own.lsn, crc = own.crc;
	if (cut < p->log_end && sl_role_truncate(p, cut, lsn, crc) < 0)
		return;
	if (own.epoch == a->epoch || p->log_end == 0)
		synced(p, now);
	else
		ask(p, now);
}
