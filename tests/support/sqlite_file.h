// Direct access to the device's object store file, for tests that play
// the attacker with write access to the state directory (and for SQLite's
// own integrity check after a crash). Only while ihsmd is stopped.
#pragma once

#include <sqlite3.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "ihsm/types.h"

namespace ihsm::test {

class SqliteFile {
 public:
  explicit SqliteFile(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
      const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw std::runtime_error("open " + path + ": " + why);
    }
  }
  ~SqliteFile() { sqlite3_close(db_); }
  SqliteFile(const SqliteFile&) = delete;
  SqliteFile& operator=(const SqliteFile&) = delete;

  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      const std::string why = err ? err : "?";
      sqlite3_free(err);
      throw std::runtime_error(sql + ": " + why);
    }
  }

  // Every row of a one-column query, as text (blobs as raw bytes).
  std::vector<std::string> column(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
      throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
    }
    std::vector<std::string> out;
    while (sqlite3_step(st) == SQLITE_ROW) {
      const auto* p = static_cast<const char*>(sqlite3_column_blob(st, 0));
      out.emplace_back(p == nullptr ? "" : std::string(p, sqlite3_column_bytes(st, 0)));
    }
    sqlite3_finalize(st);
    return out;
  }

  Bytes blob(const std::string& sql) {
    const auto rows = column(sql);
    if (rows.size() != 1) throw std::runtime_error(sql + ": not exactly one row");
    return Bytes(rows[0].begin(), rows[0].end());
  }

  void set_blob(const std::string& sql, const Bytes& value) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
      throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
    }
    sqlite3_bind_blob(st, 1, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
    const int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
  }

  std::string integrity_check() {
    std::string out;
    for (const auto& row : column("PRAGMA integrity_check")) out += row;
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace ihsm::test
