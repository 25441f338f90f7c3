// ihsm-sign-firmware: signs a firmware image, as the firmware vendor does.
// Writes the manifest (a COSE_Sign1 over the image's SHA-384, version and
// security version: docs/attestation.md) and the public key a device must
// trust to boot it. Development builds call it with a key made in the
// build folder on the first build.
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/cose.h"

using namespace ihsm;

namespace {

bool read_file(const std::string& path, Bytes& out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  out.assign(std::istreambuf_iterator<char>(f), {});
  return true;
}

// Written beside, then renamed: a build interrupted halfway leaves the old
// file or the new one.
bool write_file(const std::string& path, const Bytes& data, mode_t mode) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f.write(reinterpret_cast<const char*>(data.data()),
                 static_cast<std::streamsize>(data.size())))
      return false;
  }
  return ::chmod(tmp.c_str(), mode) == 0 && std::rename(tmp.c_str(), path.c_str()) == 0;
}

cose::Pkey load_or_make_key(const std::string& path, bool make) {
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    EVP_PKEY* key = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    return cose::Pkey(key);
  }
  if (!make) return nullptr;
  std::error_code ec;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  cose::Pkey key(EVP_EC_gen("P-384"));
  if (!key) return nullptr;
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  const Bytes pem(data, data + n);
  BIO_free(bio);
  if (!write_file(path, pem, 0600)) return nullptr;
  std::fprintf(stderr, "ihsm-sign-firmware: made a new signing key %s\n", path.c_str());
  return key;
}

Bytes public_pem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, key);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  Bytes pem(data, data + n);
  BIO_free(bio);
  return pem;
}

}  // namespace

int main(int argc, char** argv) {
  std::string key_path, image_path, manifest_path, trust_path, name;
  cose::Manifest m;
  bool new_key = false;
  CLI::App app{"ihsm-sign-firmware: sign an ihsm firmware image (ES384 manifest)"};
  app.add_option("--key", key_path, "P-384 signing key (PEM)")->required();
  app.add_flag("--new-key-if-missing", new_key, "make the key when the file does not exist");
  app.add_option("--image", image_path, "the firmware image")->required()->check(CLI::ExistingFile);
  app.add_option("--firmware-version", m.firmware_version, "version text")->required();
  app.add_option("--svn", m.svn, "security version")->required()->check(CLI::Range(0, 1 << 30));
  app.add_option("--name", name, "image name (default: the image's file name)");
  app.add_option("--manifest", manifest_path, "where to write the manifest")->required();
  app.add_option("--trust-out", trust_path, "where to write the public key (PEM)");
  CLI11_PARSE(app, argc, argv);

  cose::Pkey key = load_or_make_key(key_path, new_key);
  Bytes image;
  if (!key || !read_file(image_path, image)) {
    std::fprintf(stderr, "ihsm-sign-firmware: cannot read the key or the image\n");
    return 1;
  }
  m.image_name = name.empty() ? std::filesystem::path(image_path).filename().string() : name;
  m.image_digest.resize(48);
  unsigned len = 0;
  if (EVP_Digest(image.data(), image.size(), m.image_digest.data(), &len, EVP_sha384(), nullptr) !=
      1) {
    return 1;
  }
  cose::Sign1 manifest;
  manifest.payload = cose::encode_manifest(m);
  const Status s = cose::sign(manifest, [&](std::span<const uint8_t> tbs, Bytes& sig) {
    return cose::es384_sign(key.get(), tbs, sig);
  });
  if (!ok(s) || !write_file(manifest_path, cose::encode_sign1(manifest), 0644) ||
      (!trust_path.empty() && !write_file(trust_path, public_pem(key.get()), 0644))) {
    std::fprintf(stderr, "ihsm-sign-firmware: cannot sign or write the manifest\n");
    return 1;
  }
  return 0;
}
