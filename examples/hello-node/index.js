// A viewer-request function: adds a header and rewrites /old/* to /new/*.
exports.handler = async (event) => {
  const request = event.Records[0].cf.request;
  console.log('viewer-request for', request.uri);
  request.headers['x-hello'] = [{ key: 'X-Hello', value: 'from ledge' }];
  if (request.uri.startsWith('/old/')) {
    request.uri = '/new/' + request.uri.slice('/old/'.length);
  }
  return request;
};
