import {
  BadRequestException,
  ForbiddenException,
  HttpException,
  NotFoundException,
  PayloadTooLargeException,
  UnauthorizedException,
  UnsupportedMediaTypeException,
} from '@nestjs/common';

/** One detail of an invalid request: the field and what is wrong with it. */
export interface RequestProblem {
  field: string;
  message: string;
}

const BY_STATUS: Record<number, new (response: object) => HttpException> = {
  400: BadRequestException,
  401: UnauthorizedException,
  403: ForbiddenException,
  404: NotFoundException,
  413: PayloadTooLargeException,
  415: UnsupportedMediaTypeException,
};

/**
 * An HTTP error of the pool's routes with a stable `code` (and, for invalid requests, the field and every
 * problem), as Nest's exception of that status; the error filter turns it into the one error shape.
 */
export function httpError(
  status: number,
  code: string,
  message: string,
  extra: { field?: string; details?: RequestProblem[] } = {},
): HttpException {
  const response = { statusCode: status, code, message, ...extra };
  const Exception = BY_STATUS[status];
  return Exception ? new Exception(response) : new HttpException(response, status);
}

/** 400 INVALID_REQUEST listing every problem; the message and field are the first one's. */
export function invalidRequest(problems: RequestProblem[]): HttpException {
  const [first] = problems;
  return httpError(400, 'INVALID_REQUEST', first.message, {
    field: first.field,
    details: problems,
  });
}
