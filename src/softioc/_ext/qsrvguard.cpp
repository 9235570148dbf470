/* Strict puts on QSRV2's blocking put (patches.c's "qsrv2-put-guard").
 *
 * QSRV2 (pvxs) does a blocking PV Access put (record[block=true], p4p
 * put(wait=True)) through dbProcessNotify: its put-callback calls dbPut and
 * throws a C++ exception if dbPut fails, through dbNotify's C frames (see
 * docs/strict-puts.md, "QSRV2's blocking put").  So a put strict mode would
 * refuse must be refused before QSRV2 hands it to dbProcessNotify.
 *
 * When iocInit has built the IOC (iocBuilt, or iocRunning, before the
 * server starts), if strict puts are on, QSRV2's single-record and group
 * sources are each put behind a thin wrapper (pvxs::server::Source,
 * ChannelControl and ConnectOp are pvxs's public interfaces for exactly
 * this: a source of channels and their operations).  The wrapper forwards
 * everything; a blocking put first gets pyioc_strict_check(), which looks
 * at the value as QSRV2 will pass it to dbPut (a long string with its NUL).
 * A refused put gets the refusal's text as its error, before QSRV2 has
 * seen it (unless QSRV2 would not let the client write at all: then QSRV2
 * answers).  While QSRV2 runs its handler for a blocking put, strict.c is
 * told (a thread-local mark), so a conversion that still refuses (the
 * record's states changed in between) never fails dbPut under dbNotify.
 *
 * An NTEnum index travels as an int32 that QSRV2 casts to 16 bits before
 * dbPut (65538 would be stored as state 2 and reported as success), so
 * every put, blocking or not, of an index outside 0..65535 is refused:
 * through the single-record source here, as sent; through the group source
 * in dbPut, where QSRV2's own checks come first (refuse_group_indexes).
 */
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <pvxs/data.h>
#include <pvxs/iochooks.h>
#include <pvxs/server.h>
#include <pvxs/source.h>

#include <asLib.h>
#include <dbAccess.h>
#include <dbChannel.h>
#include <errlog.h>
#include <errSymTbl.h>
#include <initHooks.h>

/* In softioc._ext (strict.c), loaded process-wide before this library. */
extern "C" {
long pyioc_strict_check(dbChannel *chan, short dbrType, const void *buf, long nRequest);
void pyioc_strict_mark_blocking(dbChannel *chan);
void pyioc_putlog_refused_put(dbChannel *chan, const char *user, const char *host);
void pyioc_count_refused_put(int reason);
long pyioc_install_strict_puts(int enable);
int pyioc_strict_puts_enabled(void);
void pyioc_note_qsrv(int guarded);
}

namespace {

using namespace pvxs;
using namespace pvxs::server;

const char *const single_source = "qsrvSingle";     /* QSRV2's names for them */
const char *const group_source = "qsrvGroup";

typedef std::shared_ptr<dbChannel> Chan;

Chan open_channel(const std::string& name)
{
    dbChannel *chan = dbChannelCreate(name.c_str());
    if (chan && dbChannelOpen(chan)) {
        dbChannelDelete(chan);
        chan = nullptr;
    }
    return Chan(chan, [](dbChannel *c) { if (c) dbChannelDelete(c); });
}

/* Would QSRV2 wait for this put (dbProcessNotify)?  As singlesource.cpp
 * reads the request: record._options.block, unless process is false. */
bool blocking(const Value& pvRequest)
{
    bool block = false, proc = true;
    pvRequest["record._options.block"].as<bool>(block);
    if (pvRequest["record._options.process"].as<bool>(proc) && !proc)
        block = false;
    return block;
}

/* The strict check of the dbPut QSRV2 will make for this value (its
 * IOCSource::put with the single-record mapping), 0 if it passes.
 *
 * An NTEnum index travels as an int32 and QSRV2 casts it to 16 bits before
 * dbPut (65538 would store state 2): an index outside 0..65535 is checked
 * as the int32 it is, for every put, blocking or not, as CA checks one.
 * Everything else is checked here only for a blocking put: strict.c
 * refuses the others in dbPut, where QSRV2 reports the failure. */
long check(dbChannel *chan, const Value& top, bool block)
{
    Value value = top["value"];
    if (!value || !value.isMarked(true, true))
        return 0;
    if (value.type() == TypeCode::Struct)
        value = value["index"];             /* NTEnum */
    if (!value)
        return 0;
    if (dbChannelFinalElements(chan) == 1) {
        /* Other scalars arrive in the field's own type: nothing to convert. */
        if (dbChannelFinalFieldType(chan) != DBR_ENUM)
            return 0;
        epicsInt32 index = value.as<int32_t>();
        if (!block && index >= 0 && index <= 0xffff)
            return 0;
        return pyioc_strict_check(chan, DBR_LONG, &index, 1);
    }
    if (block && dbChannelFinalFieldType(chan) == DBR_CHAR && value.type() == TypeCode::String) {
        std::string text(value.as<std::string>());
        return pyioc_strict_check(chan, DBR_CHAR, text.c_str(), (long)text.size() + 1);
    }
    return 0;
}

/* A put to a group PV: its fields are not mapped to records here, and
 * QSRV2 itself decides which of them it writes (putorder), who may write
 * them (DISP, access security) and what the put log records.  So an NTEnum
 * index outside 0..65535 that QSRV2 would cast to a state (65538 -> 2) is
 * replaced by 65535, an index no enum or menu field has a state for: if
 * QSRV2 writes that field at all, strict.c refuses it in dbPut with the
 * reason ("no such state or choice"), and QSRV2 reports the failure (its
 * group put does not go through dbNotify).  In range, dbPut checks the
 * index as sent. */
void refuse_group_indexes(Value& top)
{
    for (auto fld : top.iall()) {
        if (fld.type() != TypeCode::Struct || fld.id() != "enum_t")
            continue;
        Value index = fld["index"];
        if (index && index.isMarked(false, false)) {
            int64_t sent = index.as<int64_t>();
            if (sent < 0 || sent > 0xffff)
                index = int32_t(0xffff);
        }
    }
}

std::string status_text(long status)
{
    char text[256];
    errSymLookup(status, text, sizeof text);
    return text;
}

/* Who QSRV2 says the client is (as pvxs's ioc/credentials.cpp derives it):
 * the peer's address without its port (an IPv4-mapped one as IPv4), and
 * the names access security is asked about: the account ("ca" method: the
 * part after any '/', else method/account), then role/GROUP for each role. */
struct Identity {
    std::string host;
    std::vector<std::string> users;

    explicit Identity(const ClientCredentials *cred)
    {
        if (!cred)
            return;
        host = cred->peer;
        if (!host.empty() && host[0] == '[') {              /* [v6]:port */
            size_t end = host.find(']');
            host = host.substr(1, end == std::string::npos ? std::string::npos : end - 1);
            if (host.compare(0, 7, "::ffff:") == 0 && host.find('.') != std::string::npos)
                host = host.substr(7);
        } else {
            size_t colon = host.rfind(':');
            if (colon != std::string::npos)
                host.resize(colon);                         /* a.b.c.d:port */
        }
        if (cred->method == "ca") {
            size_t slash = cred->account.find_last_of('/');
            users.push_back(slash == std::string::npos ? cred->account
                                                        : cred->account.substr(slash + 1));
        } else {
            users.push_back(cred->method + "/" + cred->account);
        }
        for (const auto& role : cred->roles())
            users.push_back("role/" + role);
    }
};

/* May this client write the channel (QSRV2's own checks: the record's DISP,
 * then access security for any of its names)?  trap: a TRAPWRITE rule
 * applies, so the put log wants the put. */
bool may_write(dbChannel *chan, const Identity& id, bool& trap)
{
    dbCommon *prec = dbChannelRecord(chan);
    trap = false;
    if (prec->disp && dbChannelField(chan) != (void *)&prec->disp)
        return false;
    if (!asActive)
        return true;
    std::vector<char> host(id.host.begin(), id.host.end());
    host.push_back('\0');
    for (const auto& user : id.users) {
        ASCLIENTPVT client = nullptr;
        if (asAddClient(&client, prec->asp, dbChannelFldDes(chan)->as_level,
                        user.c_str(), host.data()) || !client)
            continue;
        bool ok = asCheckPut(client);
        if (ok)
            trap = client->trapMask != 0;
        asRemoveClient(&client);
        if (ok)
            return true;
    }
    return false;
}

struct GuardedOp : public ConnectOp {
    std::unique_ptr<ConnectOp> inner;
    Chan chan;

    GuardedOp(std::unique_ptr<ConnectOp>&& op, const Chan& chan)
        :ConnectOp(op->name(), op->credentials(), op->op(), op->pvRequest())
        ,inner(std::move(op))
        ,chan(chan)
    {}
    virtual ~GuardedOp() {}

    virtual void connect(const Value& prototype) override { inner->connect(prototype); }
    virtual void error(const std::string& msg) override { inner->error(msg); }
    virtual void logRemote(Level lvl, const std::string& msg) override { inner->logRemote(lvl, msg); }
    virtual void onGet(std::function<void(std::unique_ptr<ExecOp>&&)>&& fn) override
    {
        inner->onGet(std::move(fn));
    }
    virtual void onClose(std::function<void(const std::string&)>&& fn) override
    {
        inner->onClose(std::move(fn));
    }
    virtual void onPut(std::function<void(std::unique_ptr<ExecOp>&&, Value&&)>&& fn) override
    {
        auto handler(std::move(fn));
        /* The operation's pvRequest is fixed: blocking or not, for all its puts. */
        bool block = blocking(pvRequest());
        Chan ch(chan);
        inner->onPut([handler, ch, block](std::unique_ptr<ExecOp>&& op, Value&& value) {
            if (!ch) {
                if (pyioc_strict_puts_enabled()) {
                    try {
                        refuse_group_indexes(value);
                    } catch (std::exception&) {
                        /* QSRV2 reports what it cannot convert */
                    }
                }
                handler(std::move(op), std::move(value));
                return;
            }
            long status;
            try {
                status = check(ch.get(), value, block);
            } catch (std::exception&) {
                status = 0;                 /* QSRV2 reports what it cannot convert */
            }
            if (status) {
                /* A client QSRV2 will not let write gets QSRV2's answer
                 * ("Put not permitted", disabled), as without strict puts. */
                bool permitted = true, trap = false;
                std::string user, host;
                try {
                    Identity id(op->credentials().get());
                    permitted = may_write(ch.get(), id, trap);
                    user = id.users.empty() ? "" : id.users[0];
                    host = id.host;
                } catch (std::exception&) {
                    trap = false;           /* (roles() looks the account up) */
                }
                if (permitted) {
                    if (trap)
                        pyioc_putlog_refused_put(ch.get(), user.c_str(), host.c_str());
                    pyioc_count_refused_put(1);     /* PYIOC_REFUSED_STRICT */
                    op->error(status_text(status));
                    return;
                }
            }
            if (!block) {
                handler(std::move(op), std::move(value));
                return;
            }
            pyioc_strict_mark_blocking(ch.get());
            try {
                handler(std::move(op), std::move(value));
            } catch (...) {
                pyioc_strict_mark_blocking(nullptr);
                throw;
            }
            pyioc_strict_mark_blocking(nullptr);
        });
    }
};

struct GuardedChannel : public ChannelControl {
    std::unique_ptr<ChannelControl> inner;
    Chan chan;

    GuardedChannel(std::unique_ptr<ChannelControl>&& ctl, const Chan& chan)
        :ChannelControl(ctl->name(), ctl->credentials(), ctl->op())
        ,inner(std::move(ctl))
        ,chan(chan)
    {}
    virtual ~GuardedChannel() {}

    virtual void onOp(std::function<void(std::unique_ptr<ConnectOp>&&)>&& fn) override
    {
        auto handler(std::move(fn));
        Chan ch(chan);
        inner->onOp([handler, ch](std::unique_ptr<ConnectOp>&& op) {
            std::unique_ptr<ConnectOp> guarded(new GuardedOp(std::move(op), ch));
            handler(std::move(guarded));
        });
    }
    virtual void onRPC(std::function<void(std::unique_ptr<ExecOp>&&, Value&&)>&& fn) override
    {
        inner->onRPC(std::move(fn));
    }
    virtual void onSubscribe(std::function<void(std::unique_ptr<MonitorSetupOp>&&)>&& fn) override
    {
        inner->onSubscribe(std::move(fn));
    }
    virtual void onClose(std::function<void(const std::string&)>&& fn) override
    {
        inner->onClose(std::move(fn));
    }
    virtual void close() override { inner->close(); }

private:
    /* Report details a source may attach (expert API; QSRV2 attaches none). */
    virtual void _updateInfo(const std::shared_ptr<const ReportInfo>&) override {}
};

struct GuardedSource : public Source {
    std::shared_ptr<Source> inner;
    bool group;                             /* QSRV2's group source */

    GuardedSource(const std::shared_ptr<Source>& src, bool group) :inner(src), group(group) {}
    virtual ~GuardedSource() {}

    virtual void onSearch(Search& op) override { inner->onSearch(op); }
    /* The server offers a new channel to each source in turn until one
     * takes it (moves it out of op): a name that is no record (a group's,
     * say) goes on unwrapped, and a wrapped channel QSRV2 leaves is handed
     * back, so the next source (qsrvGroup) still gets it. */
    virtual void onCreate(std::unique_ptr<ChannelControl>&& op) override
    {
        Chan chan(group ? Chan() : open_channel(op->name()));
        if (!chan && !group) {
            inner->onCreate(std::move(op));
            return;
        }
        GuardedChannel *guarded = new GuardedChannel(std::move(op), chan);
        std::unique_ptr<ChannelControl> wrapped(guarded);
        try {
            inner->onCreate(std::move(wrapped));
        } catch (...) {
            if (wrapped)
                op = std::move(guarded->inner);     /* intact, for the next source */
            throw;
        }
        if (wrapped)
            op = std::move(guarded->inner);
    }
    virtual List onList() override { return inner->onList(); }
    virtual void show(std::ostream& strm) override { inner->show(strm); }
};

bool guarded;

/* QSRV2 adds its source at iocBuilt and starts its server at iocRunning,
 * from its own hook; this one is registered first (when this library is
 * loaded, before QSRV2's registrar runs), so it wraps the source at
 * iocRunning, before the server starts. */
void guard_hook(initHookState state) noexcept
{
    if (guarded || (state != initHookAfterIocBuilt && state != initHookAfterIocRunning))
        return;
    server::Server srv;
    try {
        srv = pvxs::ioc::server();
    } catch (std::exception&) {
        return;                             /* no PVA server (iocInit(enable_pva=False)) */
    }
    if (!srv)
        return;
    if (!pyioc_strict_puts_enabled()) {
        pyioc_note_qsrv(0);                 /* strict puts off: EPICS as it is */
        return;
    }
    try {
        auto src(srv.getSource(single_source, 0));
        if (src) {
            srv.removeSource(single_source, 0);
            srv.addSource(single_source, std::make_shared<GuardedSource>(src, false), 0);
            guarded = true;
            if (auto grp = srv.getSource(group_source, 1)) {
                srv.removeSource(group_source, 1);
                srv.addSource(group_source, std::make_shared<GuardedSource>(grp, true), 1);
            }
            pyioc_note_qsrv(1);
            return;
        }
    } catch (std::exception& e) {
        errlogPrintf("pythonIOC: %s\n", e.what());
    }
    if (state == initHookAfterIocRunning) {
        /* Safe only guarded: a refusal inside QSRV2's blocking put would
         * throw through dbNotify. */
        errlogPrintf("pythonIOC: QSRV2's put source not found: strict puts switched off\n");
        pyioc_install_strict_puts(0);
        pyioc_note_qsrv(0);
    }
}

struct Install {
    Install() { initHookRegister(&guard_hook); }
} install;

} // namespace
