/* codec.c — nanopb glue: buffer streams that allow zero-copy views, and the
 * view field callback. */
#include "runtime/codec.h"

#include <pb_common.h>
#include <pb_decode.h>
#include <pb_encode.h>
#include <string.h>

/* Our own buffer reader: identical to nanopb's, but with an address we can
 * recognise, so a view is only ever taken from memory that outlives it. */
static bool view_buffer_read(pb_istream_t *stream, pb_byte_t *buf, size_t count)
{
    const pb_byte_t *src = (const pb_byte_t *)stream->state;
    stream->state = (pb_byte_t *)stream->state + count;
    if (buf)
        memcpy(buf, src, count);
    return true;
}

static bool decode_view(pb_istream_t *is, const pb_field_t *field)
{
    if (is->callback != view_buffer_read)
        PB_RETURN_ERROR(is, "view fields decode only from a buffer");
    pl_bytes_t view = {(const uint8_t *)is->state, is->bytes_left};
    if (view.len == 0)
        view.data = NULL;
    if (PB_HTYPE(field->type) == PB_HTYPE_REPEATED) {
        if (field->data_size != sizeof(pl_bytes_list_t))
            PB_RETURN_ERROR(is, "repeated view needs pl_bytes_list_t");
        pl_bytes_list_t *list = (pl_bytes_list_t *)field->pData;
        if (list->count >= list->capacity || !list->items)
            PB_RETURN_ERROR(is, "array overflow");
        list->items[list->count++] = view;
    } else {
        if (field->data_size != sizeof(pl_bytes_t))
            PB_RETURN_ERROR(is, "singular view needs pl_bytes_t");
        *(pl_bytes_t *)field->pData = view;
    }
    /* skip the bytes without reading them: that is the point of a view */
    is->state = (uint8_t *)is->state + view.len;
    is->bytes_left = 0;
    return true;
}

static bool encode_one(pb_ostream_t *os, const pb_field_t *field, const pl_bytes_t *v)
{
    return pb_encode_tag_for_field(os, field) && pb_encode_string(os, v->data, v->len);
}

static bool encode_view(pb_ostream_t *os, const pb_field_t *field)
{
    if (PB_HTYPE(field->type) == PB_HTYPE_REPEATED) {
        if (field->data_size != sizeof(pl_bytes_list_t))
            PB_RETURN_ERROR(os, "repeated view needs pl_bytes_list_t");
        const pl_bytes_list_t *list = (const pl_bytes_list_t *)field->pData;
        for (size_t i = 0; i < list->count; i++)
            if (!encode_one(os, field, &list->items[i]))
                return false;
        return true;
    }
    if (field->data_size != sizeof(pl_bytes_t))
        PB_RETURN_ERROR(os, "singular view needs pl_bytes_t");
    const pl_bytes_t *v = (const pl_bytes_t *)field->pData;
    /* proto3: an empty singular scalar is not written */
    if (v->len == 0)
        return true;
    return encode_one(os, field, v);
}

/* Submessages too: a repeated message field declared as a view list holds
 * each element already encoded (on the wire a submessage is length-delimited
 * like bytes), for responses too large to hold as inline arrays. */
static bool is_view_type(pb_type_t type)
{
    return PB_LTYPE(type) == PB_LTYPE_BYTES || PB_LTYPE(type) == PB_LTYPE_STRING ||
           PB_LTYPE(type) == PB_LTYPE_SUBMESSAGE;
}

bool pl_pb_field_cb(pb_istream_t *istream, pb_ostream_t *ostream, const pb_field_t *field)
{
    if (!is_view_type(field->type)) {
        if (istream)
            PB_RETURN_ERROR(istream, "callback field is not bytes/string/message");
        PB_RETURN_ERROR(ostream, "callback field is not bytes/string/message");
    }
    if (istream)
        return decode_view(istream, field);
    return encode_view(ostream, field);
}

int pl_pb_decode(const pb_msgdesc_t *desc, const uint8_t *buf, size_t len, void *msg, const char **why)
{
    pb_istream_t is = {view_buffer_read, (void *)(uintptr_t)buf, len, NULL};
    if (pb_decode_ex(&is, desc, msg, PB_DECODE_NOINIT))
        return 0;
    if (why)
        *why = PB_GET_ERROR(&is);
    return -1;
}

int pl_pb_peek_varint(const uint8_t *buf, size_t len, uint32_t field_no, uint64_t *out)
{
    pb_istream_t is = pb_istream_from_buffer(buf, len);
    pb_wire_type_t wire;
    uint32_t tag;
    bool eof;
    while (pb_decode_tag(&is, &wire, &tag, &eof)) {
        if (tag == field_no && wire == PB_WT_VARINT)
            return pb_decode_varint(&is, out) ? 0 : -1;
        if (!pb_skip_field(&is, wire))
            return -1;
    }
    return -1;
}

long pl_pb_encoded_size(const pb_msgdesc_t *desc, const void *msg)
{
    size_t size;
    if (!pb_get_encoded_size(&size, desc, msg) || size > (size_t)INT32_MAX)
        return -1;
    return (long)size;
}

int pl_pb_encode(const pb_msgdesc_t *desc, const void *msg, uint8_t *out, size_t size)
{
    pb_ostream_t os = pb_ostream_from_buffer(out, size);
    if (!pb_encode(&os, desc, msg) || os.bytes_written != size)
        return -1;
    return 0;
}

bool pl_pb_error_is_overflow(const char *why)
{
    /* nanopb's bound errors; "varint overflow" is malformed input instead */
    static const char *const bounds[] = {"string overflow", "bytes overflow", "array overflow"};
    for (size_t i = 0; why && i < sizeof(bounds) / sizeof(bounds[0]); i++)
        if (strcmp(why, bounds[i]) == 0)
            return true;
    return false;
}

int pl_pb_check_policy(const pb_msgdesc_t *desc, uint32_t *field)
{
    /* Only field types are read; the iterator still wants a message address. */
    static max_align_t dummy;
    pb_field_iter_t it;
    if (!pb_field_iter_begin_const(&it, desc, &dummy))
        return 0;
    do {
        pb_type_t t = it.type;
        if (PB_ATYPE(t) == PB_ATYPE_POINTER)
            goto bad;
        if (PB_ATYPE(t) == PB_ATYPE_CALLBACK) {
            if (!is_view_type(t))
                goto bad;
            size_t want = PB_HTYPE(t) == PB_HTYPE_REPEATED ? sizeof(pl_bytes_list_t) : sizeof(pl_bytes_t);
            if (it.data_size != want)
                goto bad;
        }
        if (PB_LTYPE_IS_SUBMSG(t) && it.submsg_desc && it.submsg_desc != desc &&
            pl_pb_check_policy(it.submsg_desc, field) != 0)
            return -1;
    } while (pb_field_iter_next(&it));
    return 0;
bad:
    *field = it.tag;
    return -1;
}
