// Numeric module ids in order of use: the default (hashed) ids depend on the checkout's
// absolute path, and the committed build must come out byte-identical from any checkout.
module.exports = { optimization: { moduleIds: 'natural', chunkIds: 'natural' } };
