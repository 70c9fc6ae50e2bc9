/*
 * batch_emit.c - what a batch hands back on the medium (DESIGN.md 5.3):
 * certs/<uniqueId>.pem, report.json (one record per CSR), report.txt,
 * registration/aws-iot-bulk.jsonl (AWS IoT bulk registration, one JSON
 * object per line), registration/azure-dps-enrollments.json (Azure DPS
 * bulk individual enrollments), chain.pem, checkpoint. Called only after
 * the certificates' issued entries are committed.
 */
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/util.h"
#include "media/batch_int.h"

#define NREASON (sizeof(((struct batch *)0)->reasons) / sizeof(size_t))

static const char *reason_names[NREASON];

static void
count_reason(struct batch *b, const char *reason)
{
	size_t i;

	for (i = 0; i < NREASON; i++) {
		if (reason_names[i] == NULL) {
			/* reasons are static strings or q->reason copies;
			 * keep our own copy of the name */
			reason_names[i] = strdup(reason);
			if (reason_names[i] == NULL)
				return;
		}
		if (strcmp(reason_names[i], reason) == 0) {
			b->reasons[i]++;
			return;
		}
	}
}

/* Dump a jansson value to the stream h, then `tail`. */
static int
dump(struct batch *b, int h, json_t *v, const char *tail)
{
	char *s;
	int r;

	if (v == NULL)
		return kr_errf(KR_ERR_ALLOC, "report record");
	if ((s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL) {
		json_decref(v);
		return kr_errf(KR_ERR_ALLOC, "report record");
	}
	r = kr_out_stream_printf(b->out, h, "%s%s", s, tail);
	free(s);
	json_decref(v);
	return r;
}

int
kr_batch_emit_begin(struct batch *b)
{
	json_t *hdr;
	int r;

	if ((b->h_report = kr_out_stream_open(b->out, "report.json")) < 0)
		return b->h_report;
	if ((b->h_aws = kr_out_stream_open(b->out,
	    "registration/aws-iot-bulk.jsonl")) < 0)
		return b->h_aws;
	if ((b->h_azure = kr_out_stream_open(b->out,
	    "registration/azure-dps-enrollments.json")) < 0)
		return b->h_azure;
	hdr = json_pack("{s:s,s:s,s:s,s:I}", "batch_id", b->desc.id,
	    "manufacturer", b->desc.manufacturer, "profile", b->profile_name,
	    "expected_count", (json_int_t)b->desc.expected);
	if ((r = kr_out_stream_printf(b->out, b->h_report, "{\"batch\":")) !=
	    0 || (r = dump(b, b->h_report, hdr, ",\n\"records\":[\n")) != 0)
		return r;
	return kr_out_stream_printf(b->out, b->h_azure,
	    "{\"mode\":\"create\",\"enrollments\":[\n");
}

static int
rejtxt_add(struct batch *b, const struct req *q)
{
	char line[640];
	size_t n;
	char *p;

	if (b->rejtxt_n >= KR_BATCH_MAX_REJTXT) {
		b->rejtxt_n++;
		return 0;
	}
	snprintf(line, sizeof(line), "  %s: %s: %s\n", q->path, q->reason,
	    q->msg);
	n = strlen(line);
	if ((p = realloc(b->rejtxt, b->rejtxt_len + n + 1)) == NULL)
		return kr_errf(KR_ERR_ALLOC, "report.txt");
	b->rejtxt = p;
	memcpy(b->rejtxt + b->rejtxt_len, line, n + 1);
	b->rejtxt_len += n;
	b->rejtxt_n++;
	return 0;
}

/* A jansson value as compact JSON text (malloc'd); the value is freed. */
static int
render(json_t *v, char **out)
{
	*out = NULL;
	if (v == NULL)
		return kr_errf(KR_ERR_ALLOC, "report record");
	*out = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(v);
	return *out == NULL ? kr_errf(KR_ERR_ALLOC, "report record") : 0;
}

/*
 * The records of an issued (or reused) certificate: report.json, the AWS
 * IoT bulk line, the Azure DPS enrollment. Uses only q: runs on the
 * workers, so the ordered emit below only appends text.
 */
static int
render_cert(struct req *q)
{
	char hex[65], *sh = NULL;
	char cn[KR_MF_UNIQUEID_MAX + 4], lc[KR_MF_UNIQUEID_MAX + 4];
	unsigned char *b64 = NULL;
	size_t i;
	BIGNUM *bn = NULL;
	int n, r;

	kr_hex(q->cert_sha, 32, hex);
	if ((bn = q->cert != NULL ?
	    ASN1_INTEGER_to_BN(X509_get0_serialNumber(q->cert), NULL) :
	    BN_bin2bn(kr_prepared_serial(q->prep), KR_SERIAL_LEN, NULL)) ==
	    NULL || (sh = BN_bn2hex(bn)) == NULL) {
		r = kr_err_ssl("%s: serial", q->path);
		goto out;
	}
	/* Same form as the log's serial: lower-case hex, no leading 0s. */
	for (i = 0; sh[i]; i++)
		sh[i] = (char)(sh[i] >= 'A' && sh[i] <= 'F' ? sh[i] + 32 :
		    sh[i]);
	for (i = 0; sh[i] == '0' && sh[i + 1] != 0; i++)
		;
	memmove(sh, sh + i, strlen(sh + i) + 1);
	if ((r = render(json_pack("{s:s,s:s,s:s,s:n,s:s,s:s,s:b,s:b}",
	    "file", q->path, "uniqueId", q->dev.unique_id, "decision",
	    "accept", "reason", "serial", sh, "cert_sha256", hex, "renewal",
	    q->renewal, "reused", q->state == REQ_REUSED),
	    &q->rec[0])) != 0)
		goto out;
	/* AWS IoT bulk registration: template parameters, one per line. */
	for (i = 0; q->dev.unique_id[i]; i++) {
		char c = q->dev.unique_id[i];

		cn[i] = (char)(c >= 'a' && c <= 'f' ? c - 32 : c);
		lc[i] = c;
	}
	cn[i] = lc[i] = 0;
	/* PEM and base64 are our own ASCII: no UTF-8 check ("o" steals) */
	if ((r = render(json_pack("{s:s++,s:s,s:o}", "ThingName", "sn", cn,
	    "", "SerialNumber", q->dev.unique_id, "CertificatePem",
	    json_stringn_nocheck(q->pem, q->pem_len)), &q->rec[1])) != 0)
		goto out;
	/* Azure DPS individual enrollment (X.509, primary certificate). */
	if ((b64 = malloc(q->der_len * 4 / 3 + 8)) == NULL) {
		r = kr_errf(KR_ERR_ALLOC, "certificate");
		goto out;
	}
	n = EVP_EncodeBlock(b64, q->der, (int)q->der_len);
	r = render(json_pack("{s:s++,s:{s:s,s:{s:{s:{s:o}}}},s:s}",
	    "registrationId", "sn", lc, "", "attestation", "type", "x509",
	    "x509", "clientCertificates", "primary", "certificate",
	    json_stringn_nocheck((char *)b64, (size_t)n),
	    "provisioningStatus", "enabled"), &q->rec[2]);
 out:
	free(b64);
	OPENSSL_free(sh);
	BN_free(bn);
	return r;
}

/* Worker: PEM, hashes and the records' text, in memory. */
void
kr_batch_emit_render(struct batch *b, struct req *q)
{
	(void)b;
	if (q->der == NULL) {
		q->werr = kr_errf(KR_ERR_INTERNAL, "%s: no certificate DER",
		    q->path);
		return;
	}
	kr_sha256(q->der, q->der_len, q->cert_sha);
	if ((q->werr = kr_ca_der_pem(q->der, q->der_len, &q->pem,
	    &q->pem_len)) != 0)
		return;
	q->werr = render_cert(q);
}

/* Worker: certs/<id>.pem (only once the issued entry is committed). */
void
kr_batch_emit_write(struct batch *b, struct req *q)
{
	char rel[KR_MF_UNIQUEID_MAX + 16];

	if (q->pem == NULL && q->werr == 0)
		kr_batch_emit_render(b, q);
	if (q->werr != 0)
		return;
	if ((q->werr = kr_snprintf(rel, sizeof(rel), "certs/%s.pem",
	    q->dev.unique_id)) != 0)
		return;
	q->werr = kr_out_put(b->out, rel, q->pem, q->pem_len, q->file_sha);
}

static int
emit_cert(struct batch *b, struct req *q)
{
	char rel[KR_MF_UNIQUEID_MAX + 16];
	int r;

	if (q->werr != 0)
		return kr_errf(q->werr, "%s: writing certs/%s.pem failed",
		    q->path, q->dev.unique_id);
	if (q->pem == NULL || q->rec[0] == NULL || q->rec[1] == NULL ||
	    q->rec[2] == NULL)
		return kr_errf(KR_ERR_INTERNAL, "%s: certificate not written",
		    q->path);
	if ((r = kr_snprintf(rel, sizeof(rel), "certs/%s.pem",
	    q->dev.unique_id)) != 0 ||
	    (r = kr_out_sum(b->out, rel, q->file_sha)) != 0 ||
	    (r = kr_out_stream_write(b->out, b->h_report, q->rec[0],
	    strlen(q->rec[0]))) != 0 ||
	    (r = kr_out_stream_write(b->out, b->h_aws, q->rec[1],
	    strlen(q->rec[1]))) != 0 ||
	    (r = kr_out_stream_write(b->out, b->h_aws, "\n", 1)) != 0 ||
	    (b->nazure++ > 0 &&
	    (r = kr_out_stream_write(b->out, b->h_azure, ",\n", 2)) != 0) ||
	    (r = kr_out_stream_write(b->out, b->h_azure, q->rec[2],
	    strlen(q->rec[2]))) != 0)
		return r;
	if (q->state == REQ_REUSED)
		b->res->reused++;
	else
		b->res->issued++;
	return 0;
}

int
kr_batch_emit(struct batch *b, struct req *q)
{
	json_t *rec;
	int r;

	if (q->state != REQ_REJECTED && q->state != REQ_ACCEPTED &&
	    q->state != REQ_REUSED)
		return kr_errf(KR_ERR_INTERNAL, "%s: undecided", q->path);
	if ((r = kr_out_stream_printf(b->out, b->h_report, "%s",
	    b->nrecords++ ? ",\n" : "")) != 0)
		return r;
	if (q->state != REQ_REJECTED)
		return emit_cert(b, q);
	kr_batch_sanitize(q->msg);
	rec = json_pack("{s:s,s:s?,s:s,s:s,s:s}", "file", q->path, "uniqueId",
	    q->have_dev ? q->dev.unique_id : NULL, "decision", "reject",
	    "reason", q->reason, "message", q->msg);
	if ((r = dump(b, b->h_report, rec, "")) != 0)
		return r;
	count_reason(b, q->reason);
	b->res->rejected++;
	return rejtxt_add(b, q);
}

int
kr_batch_emit_end(struct batch *b)
{
	struct kr_batch_result *res = b->res;
	json_t *sum, *byr;
	uint8_t *chain = NULL;
	size_t chainlen, i;
	char *txt = NULL;
	size_t cap = 4096 + b->rejtxt_len + NREASON * 80, len = 0;
	int r, n;

	if ((byr = json_object()) == NULL)
		return kr_errf(KR_ERR_ALLOC, "summary");
	for (i = 0; i < NREASON && reason_names[i] != NULL; i++)
		if (b->reasons[i] > 0)
			json_object_set_new(byr, reason_names[i],
			    json_integer((json_int_t)b->reasons[i]));
	sum = json_pack("{s:I,s:I,s:I,s:I,s:o,s:s}", "requests",
	    (json_int_t)res->requests, "signed",
	    (json_int_t)(res->issued + res->reused), "reused",
	    (json_int_t)res->reused, "rejected", (json_int_t)res->rejected,
	    "rejected_by_reason", byr, "checkpoint",
	    b->note != NULL ? b->note : "");
	if ((r = kr_out_stream_printf(b->out, b->h_report,
	    "\n],\n\"summary\":")) != 0 ||
	    (r = dump(b, b->h_report, sum, "}\n")) != 0 ||
	    (r = kr_out_stream_close(b->out, b->h_report)) != 0 ||
	    (r = kr_out_stream_printf(b->out, b->h_azure, "\n]}\n")) != 0 ||
	    (r = kr_out_stream_close(b->out, b->h_azure)) != 0 ||
	    (r = kr_out_stream_close(b->out, b->h_aws)) != 0)
		return r;
	b->h_report = b->h_aws = b->h_azure = -1;
	/* report.txt: the human summary */
	if ((txt = malloc(cap)) == NULL)
		return kr_errf(KR_ERR_ALLOC, "report.txt");
#define ADD(...) do { n = snprintf(txt + len, cap - len, __VA_ARGS__); \
	if (n < 0 || (size_t)n >= cap - len) { r = kr_errf(KR_ERR_TOO_LARGE, \
	"report.txt"); goto out; } len += (size_t)n; } while (0)
	ADD("keyroom batch report\n\n");
	ADD("batch:          %s\n", b->desc.id);
	ADD("manufacturer:   %s\n", b->desc.manufacturer);
	ADD("profile:        %s\n", b->profile_name);
	ADD("requests:       %zu CSR files (batch.json expected %lld)%s\n",
	    res->requests, b->desc.expected, (long long)res->requests !=
	    b->desc.expected ? "  << COUNT DIFFERS" : "");
	ADD("signed:         %zu", res->issued + res->reused);
	if (res->reused > 0)
		ADD(" (%zu from an interrupted run of this batch)",
		    res->reused);
	ADD("\nrejected:       %zu\n", res->rejected);
	ADD("manifests:      %zu imported, %zu new devices, %zu entries "
	    "refused\n", res->manifests, res->devices_added, b->mf_refused);
	if (res->rejected > 0) {
		ADD("\nrejections by reason:\n");
		for (i = 0; i < NREASON && reason_names[i] != NULL; i++)
			if (b->reasons[i] > 0)
				ADD("  %-28s %zu\n", reason_names[i],
				    b->reasons[i]);
		ADD("\nrejected requests:\n");
		if (b->rejtxt != NULL)
			ADD("%s", b->rejtxt);
		if (b->rejtxt_n > KR_BATCH_MAX_REJTXT)
			ADD("  ... and %zu more (see report.json)\n",
			    b->rejtxt_n - KR_BATCH_MAX_REJTXT);
	}
	ADD("\naudit checkpoint after this batch (compare with the paper "
	    "record):\n%s", b->note != NULL ? b->note : "(none)\n");
#undef ADD
	if ((r = kr_out_write(b->out, "report.txt", txt, len)) != 0)
		goto out;
	if ((r = kr_read_file(b->paths.chain_pem, 1024 * 1024, &chain,
	    &chainlen)) != 0) {
		r = kr_errctx(r, "chain");
		goto out;
	}
	if ((r = kr_out_write(b->out, "chain.pem", chain, chainlen)) != 0)
		goto out;
	if (b->note != NULL && (r = kr_out_write(b->out, "checkpoint",
	    b->note, strlen(b->note))) != 0)
		goto out;
	r = 0;
 out:
	free(txt);
	free(chain);
	return r;
}

void
kr_batch_result_from_record(struct batch *b)
{
	json_t *r = b->prevrec;

	/* The batch finished in an earlier run that was killed after its
	 * output appeared: report that run's figures. */
	b->res->issued = (size_t)json_integer_value(json_object_get(r,
	    "issued"));
	b->res->reused = (size_t)json_integer_value(json_object_get(r,
	    "reused"));
	b->res->rejected = (size_t)json_integer_value(json_object_get(r,
	    "rejected"));
	b->res->requests = b->ncsr;
}
