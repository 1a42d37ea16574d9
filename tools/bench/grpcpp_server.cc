// grpcpp_server — the reference peer for tools/bench-rpc: grpc.testing.TestService
// UnaryCall and FullDuplexCall on gRPC C++ (grpc++), answering like
// tests/interop/interop_server so both servers do the same work per call.
//
// It uses the completion-queue async API with one queue and one polling
// thread per --threads, the layout of gRPC's own QPS benchmark server: the
// thread count is then exactly what we pass, as with interop_server
// --workers. There is no graceful drain; SIGTERM simply ends the process.
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "grpc/testing/test.grpc.pb.h"

namespace
{

using grpc::ServerAsyncReaderWriter;
using grpc::ServerAsyncResponseWriter;
using grpc::ServerCompletionQueue;
using grpc::ServerContext;
using grpc::Status;
using grpc::StatusCode;
using grpc::testing::SimpleRequest;
using grpc::testing::SimpleResponse;
using grpc::testing::StreamingOutputCallRequest;
using grpc::testing::StreamingOutputCallResponse;
using grpc::testing::TestService;

// Same bound as interop_server's, so both reject the same requests.
constexpr int kMaxPayload = 4 << 20;
// Calls waiting to be accepted per queue and method: more than one so a burst
// of new streams (h2load opens many at once) does not wait for re-arming.
constexpr int kPendingPerQueue = 16;

bool size_ok(int size)
{
    return size >= 0 && size <= kMaxPayload;
}

// A call's state machine; the queue's tag is the call itself.
class Call
{
  public:
    virtual ~Call() = default;
    virtual void proceed(bool ok) = 0;
};

class UnaryCall final : public Call
{
  public:
    UnaryCall(TestService::AsyncService *svc, ServerCompletionQueue *cq) : svc_(svc), cq_(cq), responder_(&ctx_)
    {
        svc_->RequestUnaryCall(&ctx_, &req_, &responder_, cq_, cq_, this);
    }

    void proceed(bool ok) override
    {
        if (!ok || replied_) { // server shutting down, or Finish completed
            delete this;
            return;
        }
        new UnaryCall(svc_, cq_);
        replied_ = true;
        if (!size_ok(req_.response_size())) {
            responder_.FinishWithError(Status(StatusCode::INVALID_ARGUMENT, "response size out of range"), this);
            return;
        }
        SimpleResponse resp;
        resp.mutable_payload()->mutable_body()->assign(static_cast<size_t>(req_.response_size()), '\0');
        responder_.Finish(resp, Status::OK, this);
    }

  private:
    TestService::AsyncService *svc_;
    ServerCompletionQueue *cq_;
    ServerContext ctx_;
    SimpleRequest req_;
    ServerAsyncResponseWriter<SimpleResponse> responder_;
    bool replied_ = false;
};

// Reads a request, writes one response per response_parameters entry (one
// write in flight at a time, as gRPC requires), reads the next; finishes OK
// on half-close.
class DuplexCall final : public Call
{
  public:
    DuplexCall(TestService::AsyncService *svc, ServerCompletionQueue *cq) : svc_(svc), cq_(cq), stream_(&ctx_)
    {
        svc_->RequestFullDuplexCall(&ctx_, &stream_, cq_, cq_, this);
    }

    void proceed(bool ok) override
    {
        switch (state_) {
        case State::accepting:
            if (!ok) {
                delete this;
                return;
            }
            new DuplexCall(svc_, cq_);
            read_next();
            return;
        case State::reading:
            if (!ok) { // half-close (or the client went away)
                finish(Status::OK);
                return;
            }
            for (const auto &p : req_.response_parameters())
                if (!size_ok(p.size())) {
                    finish(Status(StatusCode::INVALID_ARGUMENT, "response size out of range"));
                    return;
                }
            next_param_ = 0;
            write_next();
            return;
        case State::writing:
            if (!ok) { // the stream is broken; only Finish can still complete
                finish(Status(StatusCode::CANCELLED, "write failed"));
                return;
            }
            write_next();
            return;
        case State::finishing: delete this; return;
        }
    }

  private:
    enum class State { accepting, reading, writing, finishing };

    void read_next()
    {
        state_ = State::reading;
        req_.Clear();
        stream_.Read(&req_, this);
    }

    void write_next()
    {
        if (next_param_ == req_.response_parameters_size()) {
            read_next();
            return;
        }
        int size = req_.response_parameters(next_param_++).size();
        resp_.mutable_payload()->mutable_body()->assign(static_cast<size_t>(size), '\0');
        state_ = State::writing;
        stream_.Write(resp_, this);
    }

    void finish(const Status &st)
    {
        state_ = State::finishing;
        stream_.Finish(st, this);
    }

    TestService::AsyncService *svc_;
    ServerCompletionQueue *cq_;
    ServerContext ctx_;
    ServerAsyncReaderWriter<StreamingOutputCallResponse, StreamingOutputCallRequest> stream_;
    StreamingOutputCallRequest req_;
    StreamingOutputCallResponse resp_;
    int next_param_ = 0;
    State state_ = State::accepting;
};

void poll_queue(TestService::AsyncService *svc, ServerCompletionQueue *cq)
{
    for (int i = 0; i < kPendingPerQueue; i++) {
        new UnaryCall(svc, cq);
        new DuplexCall(svc, cq);
    }
    void *tag;
    bool ok;
    while (cq->Next(&tag, &ok))
        static_cast<Call *>(tag)->proceed(ok);
}

bool flag_value(const char *arg, const char *name, const char **value)
{
    size_t n = std::strlen(name);
    if (std::strncmp(arg, name, n) != 0 || arg[n] != '=')
        return false;
    *value = arg + n + 1;
    return true;
}

} // namespace

int main(int argc, char **argv)
{
    int port = 0, threads = 2;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (flag_value(argv[i], "--port", &v))
            port = std::atoi(v);
        else if (flag_value(argv[i], "--threads", &v))
            threads = std::atoi(v);
        else {
            std::fprintf(stderr, "usage: grpcpp_server [--port=N (0: any free port)] [--threads=N (default 2)]\n");
            return 2;
        }
    }
    if (port < 0 || port > 65535 || threads < 1 || threads > 256) {
        std::fprintf(stderr, "grpcpp_server: --port must be 0..65535 and --threads 1..256\n");
        return 2;
    }

    TestService::AsyncService service;
    grpc::ServerBuilder builder;
    int bound_port = 0;
    builder.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(), &bound_port);
    builder.RegisterService(&service);
    std::vector<std::unique_ptr<ServerCompletionQueue>> queues;
    for (int i = 0; i < threads; i++)
        queues.push_back(builder.AddCompletionQueue());
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    if (!server || bound_port == 0) {
        std::fprintf(stderr, "grpcpp_server: cannot listen on 127.0.0.1:%d\n", port);
        return 1;
    }
    std::printf("grpcpp_server: listening on 127.0.0.1:%d\n", bound_port);
    std::fflush(stdout);

    std::vector<std::thread> pollers;
    for (auto &cq : queues)
        pollers.emplace_back(poll_queue, &service, cq.get());
    for (auto &t : pollers)
        t.join();
    return 0;
}
