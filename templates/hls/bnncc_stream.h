// bnncc_stream.h -- a minimal hls::stream for C simulation with g++.
//
// Written for bnncc (Apache-2.0). It models an unbounded FIFO: C simulation calls the
// dataflow stages one after another, so every stream must hold a whole frame (or batch).
// Synthesis uses the vendor's <hls_stream.h> instead (see bnncc_common.h).
#ifndef BNNCC_STREAM_H
#define BNNCC_STREAM_H

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>

namespace hls {

template <typename T>
class stream {
 public:
  stream() : name_("stream") {}
  explicit stream(const char *name) : name_(name) {}
  stream(const stream &) = delete;
  stream &operator=(const stream &) = delete;

  // Reading an empty stream is a deadlock in hardware; in C simulation it is fatal.
  T read() {
    if (fifo_.empty()) {
      std::fprintf(stderr, "bnncc_stream: read from empty stream '%s'\n", name_.c_str());
      std::abort();
    }
    T v = fifo_.front();
    fifo_.pop_front();
    return v;
  }
  void read(T &v) { v = read(); }
  bool read_nb(T &v) {
    if (fifo_.empty()) return false;
    v = read();
    return true;
  }
  void write(const T &v) { fifo_.push_back(v); }
  bool write_nb(const T &v) {
    write(v);
    return true;
  }
  bool empty() const { return fifo_.empty(); }
  bool full() const { return false; }
  std::size_t size() const { return fifo_.size(); }
  const std::string &name() const { return name_; }

  void operator>>(T &v) { v = read(); }
  void operator<<(const T &v) { write(v); }

 private:
  std::string name_;
  std::deque<T> fifo_;
};

}  // namespace hls

#endif  // BNNCC_STREAM_H
